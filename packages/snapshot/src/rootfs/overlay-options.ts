import { mkdirSync, symlinkSync } from "node:fs";
import path from "node:path";
import { OverlayPathError } from "./errors.js";

export interface OverlayDirs {
  /** Top-most first; must not be empty here (callers substitute an empty dir for FROM scratch). */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
}

export interface OverlayMountData {
  /** The `-o` string for mount(8). */
  data: string;
  /** Directory mount(8) must run in: lower paths may be relative to it to fit the one-page option limit. */
  cwd: string;
}

// mount(2) takes the option string in one page; keep a margin for the kernel's own parsing.
const MAX_DATA = 3800;

/**
 * Mount options for an overlay whose upper directory is diffed afterwards: redirect_dir and metacopy off so a
 * renamed directory or a chmod'ed file is copied up whole (the upper alone then describes the change),
 * index off like containerd (lowers are shared between snapshots). In a user namespace the overlay xattrs
 * live under user.overlay.* (userxattr), the only namespace an unprivileged mount may write.
 */
export function overlayMountData(
  dirs: OverlayDirs,
  opts: { userxattr?: boolean; linkDir?: string } = {},
): OverlayMountData {
  if (dirs.lowerDirs.length === 0) throw new OverlayPathError("overlay needs at least one lower directory");
  for (const d of [...dirs.lowerDirs, dirs.upperDir, dirs.workDir]) checkPath(d);
  // userxattr already forces redirect_dir=nofollow (no redirects created) and rejects an explicit "off".
  const extra = opts.userxattr ? "index=off,metacopy=off,userxattr" : "index=off,redirect_dir=off,metacopy=off";
  const build = (lowers: string[]) =>
    `lowerdir=${lowers.join(":")},upperdir=${dirs.upperDir},workdir=${dirs.workDir},${extra}`;
  const data = build(dirs.lowerDirs);
  if (data.length <= MAX_DATA) return { data, cwd: "/" };
  // Too long: make the lowers relative to their common parent (what containerd does for deep images).
  const cwd = commonParent(dirs.lowerDirs);
  const rel = build(dirs.lowerDirs.map((d) => path.relative(cwd, d) || "."));
  if (rel.length <= MAX_DATA) return { data: rel, cwd };
  // Still too long: short symlinks to the lowers (Docker's overlay2 "l/" links), resolved at mount time.
  if (opts.linkDir === undefined) {
    throw new OverlayPathError(`overlay options too long (${rel.length} bytes) even with relative lower paths`);
  }
  mkdirSync(opts.linkDir, { recursive: true });
  const names = dirs.lowerDirs.map((d, i) => {
    const name = i.toString(36);
    symlinkSync(d, path.join(opts.linkDir as string, name));
    return name;
  });
  const linked = build(names);
  if (linked.length > MAX_DATA) throw new OverlayPathError(`overlay options too long (${linked.length} bytes)`);
  return { data: linked, cwd: opts.linkDir };
}

function checkPath(p: string): void {
  if (!path.isAbsolute(p)) throw new OverlayPathError(`overlay directory must be absolute: ${p}`);
  if (/[,:\\\n]/.test(p)) throw new OverlayPathError(`overlay directory contains ",", ":" or "\\": ${p}`);
}

function commonParent(dirs: string[]): string {
  const split = dirs.map((d) => path.resolve(d).split("/"));
  const first = split[0] ?? [""];
  let n = 0;
  while (n < first.length - 1 && split.every((s) => s.length > n + 1 && s[n] === first[n])) n++;
  return first.slice(0, n).join("/") || "/";
}
