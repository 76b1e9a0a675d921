import { open, lstat, readdir, readlink } from "node:fs/promises";
import path from "node:path";
import { opaqueEntry, whiteoutEntry, type LayerEntry } from "../layer/index.js";
import { assertNotAborted, entryFromStat, entryType, toStatLike, type StatLike } from "./fsentry.js";
import { sortAndLink } from "./diff-overlay.js";
import { layerXattrs, readXattrs, type XattrMap } from "./xattrs.js";

/** What a diff needs to remember of one path of a tree. */
export interface IndexedNode {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  rdev: number;
  ino: bigint;
  /** Birth time: a directory removed and made again can get its old inode back, never its birth time. */
  born: bigint;
  linkname?: string;
  xattrs: string;
}

export interface TreeIndex {
  root: string;
  nodes: Map<string, IndexedNode>;
}

interface Walked {
  rel: string;
  abs: string;
  st: StatLike;
  mtimeNs: bigint;
  ino: bigint;
  born: bigint;
}

async function walkTree(root: string, signal?: AbortSignal): Promise<Walked[]> {
  const out: Walked[] = [];
  const rec = async (rel: string): Promise<void> => {
    assertNotAborted(signal);
    for (const d of await readdir(rel === "" ? root : path.join(root, rel), { withFileTypes: true })) {
      const childRel = rel === "" ? d.name : `${rel}/${d.name}`;
      const abs = path.join(root, childRel);
      const b = await lstat(abs, { bigint: true });
      out.push({ rel: childRel, abs, st: toStatLike(b), mtimeNs: b.mtimeNs, ino: b.ino, born: b.birthtimeNs });
      if (b.isDirectory()) await rec(childRel);
    }
  };
  await rec("");
  return out;
}

function xattrKey(x: XattrMap, abs: string): string {
  const rec = layerXattrs(x.get(abs));
  if (!rec) return "";
  return Object.keys(rec)
    .sort()
    .map((k) => `${k}=${rec[k]?.toString("base64")}`)
    .join("\n");
}

/** Records the state of a tree so a later diffAgainstIndex can tell what changed in it. */
export async function indexTree(root: string, opts: { signal?: AbortSignal } = {}): Promise<TreeIndex> {
  const [walked, x] = await Promise.all([walkTree(root, opts.signal), readXattrs([root], { recursive: true, signal: opts.signal })]);
  const nodes = new Map<string, IndexedNode>();
  for (const w of walked) {
    const type = entryType(w.st);
    if (!type) continue;
    nodes.set(w.rel, {
      type,
      mode: w.st.mode & 0o7777,
      uid: w.st.uid,
      gid: w.st.gid,
      size: w.st.size,
      mtimeNs: w.mtimeNs,
      rdev: w.st.rdev,
      ino: w.ino,
      born: w.born,
      linkname: type === "symlink" ? await readlink(w.abs) : undefined,
      xattrs: xattrKey(x, w.abs),
    });
  }
  return { root, nodes };
}

/**
 * The layer turning tree `lowerRoot` into tree `upperRoot` (two separate directories), with containerd's
 * double-walk rules: changed, added and type-replaced paths as full entries, deleted ones as whiteouts on
 * their top-most path, parents of every change with their current metadata, hardlinks kept.
 */
export async function diffTrees(
  lowerRoot: string,
  upperRoot: string,
  opts: { signal?: AbortSignal } = {},
): Promise<LayerEntry[]> {
  return diffAgainstIndex(await indexTree(lowerRoot, opts), upperRoot, { ...opts, sameTree: false });
}

/**
 * Diff of `root` now against an earlier index. With `sameTree` (the index was taken of this very directory,
 * as the copy driver does) a directory whose inode changed was removed and recreated: it is emitted as an
 * opaque directory with all its content, which is what overlayfs records for `rm -rf d && mkdir d`.
 */
export async function diffAgainstIndex(
  base: TreeIndex,
  root: string,
  opts: { signal?: AbortSignal; sameTree?: boolean } = {},
): Promise<LayerEntry[]> {
  const sameTree = opts.sameTree ?? base.root === root;
  const [walked, x] = await Promise.all([walkTree(root, opts.signal), readXattrs([root], { recursive: true, signal: opts.signal })]);
  const byRel = new Map(walked.map((w) => [w.rel, w]));
  const include = new Set<string>();
  const opaque = new Set<string>();
  const replacedDirs: string[] = []; // opaque dirs: everything below them is new

  for (const w of walked) {
    assertNotAborted(opts.signal);
    const type = entryType(w.st);
    if (!type) continue;
    if (replacedDirs.some((d) => w.rel.startsWith(d + "/"))) {
      include.add(w.rel);
      continue;
    }
    const old = base.nodes.get(w.rel);
    if (!old || old.type !== type) {
      include.add(w.rel);
      continue;
    }
    if (type === "dir" && sameTree && (old.ino !== w.ino || old.born !== w.born)) {
      include.add(w.rel);
      opaque.add(w.rel);
      replacedDirs.push(w.rel);
      continue;
    }
    if (await changed(old, w, type, xattrKey(x, w.abs), base.root)) include.add(w.rel);
  }

  // Other names of a changed file's inode, so the layer keeps the link (overlay copies both names up).
  const byIno = new Map<bigint, string[]>();
  for (const w of walked) {
    if (w.st.isFile() && w.st.nlink > 1) byIno.set(w.ino, [...(byIno.get(w.ino) ?? []), w.rel]);
  }
  for (const rel of [...include]) {
    const w = byRel.get(rel);
    if (w && w.st.isFile() && w.st.nlink > 1) for (const other of byIno.get(w.ino) ?? []) include.add(other);
  }

  const items: Array<{ e: LayerEntry; st?: StatLike }> = [];
  // Deletions: a whiteout for the top-most deleted path whose parent still is a directory that is not opaque.
  for (const rel of base.nodes.keys()) {
    if (byRel.has(rel)) continue;
    const parent = path.posix.dirname(rel);
    if (parent !== ".") {
      const p = byRel.get(parent);
      if (!p || !p.st.isDirectory() || !base.nodes.has(parent) || base.nodes.get(parent)?.type !== "dir") continue;
      if (replacedDirs.some((d) => parent === d || parent.startsWith(d + "/"))) continue;
      include.add(parent);
    }
    items.push({ e: whiteoutEntry(rel) });
  }
  // Parents of every change, with their current metadata.
  for (const rel of [...include]) {
    for (let p = path.posix.dirname(rel); p !== "."; p = path.posix.dirname(p)) {
      if (include.has(p)) break;
      include.add(p);
    }
  }
  for (const rel of include) {
    const w = byRel.get(rel);
    if (!w) continue;
    const e = await entryFromStat(rel, w.abs, w.st, layerXattrs(x.get(w.abs)));
    if (!e) continue;
    items.push({ e, st: w.st });
    if (opaque.has(rel)) items.push({ e: opaqueEntry(rel) });
  }
  return sortAndLink(items);
}

async function changed(old: IndexedNode, w: Walked, type: string, xattrs: string, baseRoot: string): Promise<boolean> {
  const st = w.st;
  if ((st.mode & 0o7777) !== old.mode || st.uid !== old.uid || st.gid !== old.gid || xattrs !== old.xattrs) return true;
  if (type === "dir") return w.mtimeNs !== old.mtimeNs;
  if (type === "symlink") return (await readlink(w.abs)) !== old.linkname || w.mtimeNs !== old.mtimeNs;
  if (type === "char" || type === "block") return st.rdev !== old.rdev;
  if (type === "fifo") return false;
  if (st.size !== old.size || w.mtimeNs !== old.mtimeNs) return true;
  // Same size and mtime: trust it unless the filesystem has no sub-second timestamps (then compare bytes),
  // like containerd. A same-tree index has no old bytes left to compare against.
  if (w.mtimeNs % 1_000_000_000n !== 0n || baseRoot === "") return false;
  return !(await sameContent(path.join(baseRoot, w.rel), w.abs));
}

async function sameContent(a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  const [fa, fb] = await Promise.all([open(a, "r"), open(b, "r")]);
  try {
    const ba = Buffer.alloc(65536);
    const bb = Buffer.alloc(65536);
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length), fb.read(bb, 0, bb.length)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
    }
  } catch {
    return false;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
