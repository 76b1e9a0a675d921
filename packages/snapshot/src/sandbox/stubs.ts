import { lstat, mkdir, readdir, rmdir, stat, unlink, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { containerPath } from "./plan.js";
import type { SandboxMount } from "./types.js";

/**
 * Builds the bottom-most overlay lower with empty placeholders for every mount point (/proc, /dev, /sys,
 * /etc/hosts, /etc/hostname, /etc/resolv.conf, RUN --mount targets). Mount points then exist in the merged
 * view without being created in the upper dir, so none of them can leak into the layer; image content in
 * the real lowers still wins over every placeholder.
 */
export async function createStubLower(
  dir: string,
  mounts: SandboxMount[],
  sourceIsDir: (m: Extract<SandboxMount, { type: "bind" }>) => boolean,
): Promise<void> {
  const dirs = ["/proc", "/dev", "/sys", "/etc"];
  const files = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];
  for (const m of mounts) {
    const dest = containerPath(m.target, "mount target");
    if (dest === "/") continue;
    (m.type === "bind" && !sourceIsDir(m) ? files : dirs).push(dest);
  }
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const d of dirs) {
    try {
      await mkdir(path.join(dir, d), { recursive: true, mode: 0o755 });
    } catch (err) {
      // Only possible in an existing tree (copy driver): a file or dangling symlink is in the way; the
      // launcher resolves that target at run time instead.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" && (err as NodeJS.ErrnoException).code !== "ENOTDIR") throw err;
    }
  }
  for (const f of files) {
    try {
      await mkdir(path.join(dir, path.posix.dirname(f)), { recursive: true, mode: 0o755 });
      await writeFile(path.join(dir, f), "", { flag: "wx", mode: 0o644 });
    } catch (err) {
      // The same target twice, or (existing tree) something already there: keep what is there.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EEXIST" && code !== "ENOTDIR" && code !== "ENOENT") throw err;
    }
  }
}

/**
 * Removes the placeholders the launcher had to create inside the writable tree (`base`: the upper dir or the
 * copy rootfs), deepest first, but only while they are still empty (the command may have written into a
 * created directory), restoring the parent's timestamps so the parent does not show up as changed. This is
 * what BuildKit's mount-stub cleaner does.
 */
export async function removeStubs(base: string, created: string[]): Promise<void> {
  const ordered = [...created].sort((a, b) => b.split("/").length - a.split("/").length);
  for (const p of ordered) {
    const host = path.join(base, p);
    let st;
    try {
      st = await lstat(host);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      if ((await readdir(host)).length > 0) continue;
    } else if (!st.isFile() || st.size !== 0) {
      continue;
    }
    const parent = path.dirname(host);
    let parentSt;
    try {
      parentSt = await stat(parent);
    } catch {
      continue;
    }
    await (st.isDirectory() ? rmdir(host) : unlink(host));
    await utimes(parent, parentSt.atimeMs / 1000, parentSt.mtimeMs / 1000);
  }
}
