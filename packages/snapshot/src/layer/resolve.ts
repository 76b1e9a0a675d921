import { chmod, lstat, mkdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { ExtractError, UnsafePathError } from "./errors.js";

const MAX_SYMLINK_HOPS = 40; // Linux's MAXSYMLINKS

/**
 * Splits a tar member name into path components, refusing anything that could address a location
 * outside the root: absolute names, ".." components, NUL bytes. "." and empty components are dropped.
 */
export function safeComponents(entryPath: string): string[] {
  if (entryPath.startsWith("/")) throw new UnsafePathError(entryPath, "absolute path");
  if (entryPath.includes("\0")) throw new UnsafePathError(entryPath, "NUL byte in path");
  const parts = entryPath.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new UnsafePathError(entryPath, '".." component');
  return parts;
}

/**
 * Resolves directory `components` below `root` the way the kernel would inside a chroot, one component
 * at a time with lstat: symlinks are followed by reading them and re-resolving their target below the
 * root (absolute targets restart at the root, as they mean inside the image), and a ".." that would
 * climb above the root is refused instead of being clamped. Missing directories are created (0755)
 * when `create` is set, otherwise null is returned. The result is a host path inside `root`.
 */
export async function resolveDirInRoot(
  root: string,
  components: readonly string[],
  entryPath: string,
  create: boolean,
): Promise<string | null> {
  const current: string[] = [];
  const queue = [...components];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (current.length === 0) throw new UnsafePathError(entryPath, "a symlink in its parent path leads outside the destination");
      current.pop();
      continue;
    }
    const host = join(root, ...current, part);
    const st = await lstat(host).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    if (st === null) {
      if (!create) return null;
      await mkdir(host);
      await chmod(host, 0o755);
      current.push(part);
    } else if (st.isDirectory()) {
      current.push(part);
    } else if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new UnsafePathError(entryPath, "too many levels of symbolic links");
      const target = await readlink(host);
      if (target.startsWith("/")) current.length = 0;
      queue.unshift(...target.split("/"));
    } else {
      throw new ExtractError(entryPath, `parent ${JSON.stringify([...current, part].join("/"))} is not a directory`);
    }
  }
  return join(root, ...current);
}
