import { lstat, mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { RootfsError } from "./errors.js";
import { assertNotAborted } from "./fsentry.js";
import { readXattrs } from "./xattrs.js";
import { runTool } from "../util/run-tool.js";

const run = runTool;
const TOOL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };
const OPAQUE = ["trusted.overlay.opaque", "user.overlay.opaque"];

/**
 * Materialises overlay-format lower dirs (top-most first) into `dest`, bottom-up, the way overlayfs would
 * show them merged: a lower's whiteouts (0/0 char devices) delete, its opaque directories hide what is below,
 * and its content is copied with `cp -a --reflink=auto` (a cheap clone on btrfs/xfs, a real copy elsewhere:
 * never hardlinks, a command writing into a file must not change the lower).
 */
export async function materializeLowers(lowerDirs: string[], dest: string, signal?: AbortSignal): Promise<void> {
  await mkdir(dest, { recursive: true });
  for (const lower of [...lowerDirs].reverse()) {
    assertNotAborted(signal);
    const whiteouts: string[] = [];
    const xattrs = await readXattrs([lower], { recursive: true, signal });
    const opaqueDirs = [...xattrs]
      .filter(([, m]) => OPAQUE.some((k) => m.get(k)?.toString() === "y"))
      .map(([abs]) => path.relative(lower, abs));
    for (const d of opaqueDirs) await rm(path.join(dest, d), { recursive: true, force: true });
    await prepare(lower, dest, "", whiteouts, signal);
    try {
      await run("cp", ["-a", "--reflink=auto", "--", `${lower}/.`, `${dest}/`], { env: TOOL_ENV, signal, maxBuffer: 1 << 24 });
    } catch (err) {
      throw new RootfsError(`copying ${lower} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err });
    }
    // cp copied the whiteout devices themselves; they only meant "deleted".
    for (const w of whiteouts) await rm(path.join(dest, w), { force: true });
  }
}

/** Applies this lower's deletions to dest and clears type conflicts cp cannot overwrite. */
async function prepare(lower: string, dest: string, rel: string, whiteouts: string[], signal?: AbortSignal): Promise<void> {
  assertNotAborted(signal);
  for (const d of await readdir(path.join(lower, rel), { withFileTypes: true })) {
    const childRel = rel === "" ? d.name : `${rel}/${d.name}`;
    const st = await lstat(path.join(lower, childRel));
    const target = path.join(dest, childRel);
    let existing;
    try {
      existing = await lstat(target);
    } catch {
      existing = undefined;
    }
    if (st.isCharacterDevice() && st.rdev === 0) {
      whiteouts.push(childRel);
      if (existing) await rm(target, { recursive: true, force: true });
      continue;
    }
    if (existing && (existing.isDirectory() !== st.isDirectory() || !existing.isDirectory())) {
      await rm(target, { recursive: true, force: true });
    }
    if (st.isDirectory() && existing?.isDirectory()) await prepare(lower, dest, childRel, whiteouts, signal);
    else if (st.isDirectory()) await collectWhiteouts(lower, childRel, whiteouts);
  }
}

async function collectWhiteouts(lower: string, rel: string, whiteouts: string[]): Promise<void> {
  for (const d of await readdir(path.join(lower, rel), { withFileTypes: true })) {
    const childRel = `${rel}/${d.name}`;
    if (d.isCharacterDevice()) {
      const st = await lstat(path.join(lower, childRel));
      if (st.rdev === 0) whiteouts.push(childRel);
    } else if (d.isDirectory()) await collectWhiteouts(lower, childRel, whiteouts);
  }
}
