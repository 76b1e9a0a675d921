import type { BigIntStats } from "node:fs";
import { readlink } from "node:fs/promises";
import type { LayerEntry, LayerEntryType } from "../layer/index.js";
import { DiffError } from "./errors.js";

/** The parts of fs.Stats the diff needs; fs.Stats satisfies it, toStatLike adapts BigIntStats. */
export interface StatLike {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  rdev: number;
  nlink: number;
  dev: number | bigint;
  ino: number | bigint;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isFIFO(): boolean;
}

export function toStatLike(b: BigIntStats): StatLike {
  return {
    mode: Number(b.mode),
    uid: Number(b.uid),
    gid: Number(b.gid),
    size: Number(b.size),
    mtimeMs: Number(b.mtimeNs / 1000n) / 1000,
    rdev: Number(b.rdev),
    nlink: Number(b.nlink),
    dev: b.dev,
    ino: b.ino,
    isFile: () => b.isFile(),
    isDirectory: () => b.isDirectory(),
    isSymbolicLink: () => b.isSymbolicLink(),
    isCharacterDevice: () => b.isCharacterDevice(),
    isBlockDevice: () => b.isBlockDevice(),
    isFIFO: () => b.isFIFO(),
  };
}

export function entryType(st: StatLike): LayerEntryType | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return undefined; // sockets are not representable in a tar layer
}

/** Linux dev_t split (glibc's gnu_dev_major/minor). */
export function devMajor(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
export function devMinor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/** A layer entry describing the object at `abs` as it is now (content streamed lazily from disk). */
export async function entryFromStat(
  rel: string,
  abs: string,
  st: StatLike,
  xattrs: Record<string, Buffer> | undefined,
): Promise<LayerEntry | undefined> {
  const type = entryType(st);
  if (!type) return undefined;
  const e: LayerEntry = { path: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs };
  if (xattrs && Object.keys(xattrs).length > 0) e.xattrs = xattrs;
  switch (type) {
    case "file":
      e.size = st.size;
      e.sourcePath = abs; // read synchronously by the layer writer: no stream per file
      break;
    case "symlink":
      e.linkname = await readlink(abs);
      break;
    case "char":
    case "block":
      e.devmajor = devMajor(st.rdev);
      e.devminor = devMinor(st.rdev);
      break;
    default:
      break;
  }
  return e;
}

/** Turns later names of one inode into hardlink entries pointing at the first name emitted in the layer. */
export class HardlinkTracker {
  private readonly first = new Map<string, string>();
  /** Returns the hardlink entry replacing `e` when an earlier entry of the layer has the same inode. */
  link(e: LayerEntry, st: StatLike): LayerEntry {
    if (e.type !== "file" || st.nlink < 2) return e;
    const key = `${st.dev}:${st.ino}`;
    const target = this.first.get(key);
    if (target === undefined) {
      this.first.set(key, e.path);
      return e;
    }
    const { open: _open, size: _size, ...rest } = e;
    return { ...rest, type: "hardlink", linkname: target, size: 0 };
  }
}

export function assertNotAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new DiffError("aborted");
}
