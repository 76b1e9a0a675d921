import type { Stats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { layerSortKey, opaqueEntry, whiteoutEntry, type LayerEntry } from "../layer/index.js";
import { entryFromStat, HardlinkTracker, assertNotAborted, type StatLike } from "./fsentry.js";
import { layerXattrs, readXattrs, type XattrMap } from "./xattrs.js";

export interface DiffOverlayOptions {
  /** The overlay's lower dirs, top-most first: whiteouts that hide nothing in them are dropped. */
  lowerDirs: string[];
  /** The upper dir's xattrs read already (SandboxResult.upperXattrs); read with getfattr when absent. */
  xattrs?: XattrMap;
  signal?: AbortSignal;
}

interface Found {
  rel: string;
  abs: string;
  st: Stats;
}

const OPAQUE_XATTRS = ["trusted.overlay.opaque", "user.overlay.opaque"];

/**
 * The layer for what happened in an overlay, read from its upper dir alone (so the cost follows the change,
 * not the image): overlay whiteouts (0/0 char devices) become `.wh.` entries, opaque directories
 * (overlay.opaque=y) a `.wh..wh..opq` marker followed by their new content, and every other upper object —
 * new, modified, chmod/chown'ed (a metadata change copies the whole file up, metacopy being off), or a
 * directory copied up because something below it changed — a full entry with its current metadata.
 * Names sharing an inode become hardlinks to the first of them in layer order.
 */
export async function diffOverlayUpper(upperDir: string, opts: DiffOverlayOptions): Promise<LayerEntry[]> {
  const found: Found[] = [];
  await walk(upperDir, "", found, opts.signal);
  if (found.length === 0) return [];
  const xattrs = opts.xattrs ?? (await readXattrs([upperDir], { recursive: true, signal: opts.signal }));

  const out: Array<{ e: LayerEntry; st?: Stats }> = [];
  for (const f of found) {
    assertNotAborted(opts.signal);
    if (f.st.isCharacterDevice() && f.st.rdev === 0) {
      if (await existsInLowers(f.rel, opts.lowerDirs)) out.push({ e: whiteoutEntry(f.rel) });
      continue;
    }
    const attrs = xattrs.get(f.abs);
    const e = await entryFromStat(f.rel, f.abs, f.st, layerXattrs(attrs));
    if (!e) continue;
    out.push({ e, st: f.st });
    if (f.st.isDirectory() && OPAQUE_XATTRS.some((k) => attrs?.get(k)?.toString() === "y")) {
      out.push({ e: opaqueEntry(f.rel) });
    }
  }
  return sortAndLink(out);
}

export function sortAndLink(items: Array<{ e: LayerEntry; st?: StatLike }>): LayerEntry[] {
  const keyed = items.map((it) => ({ ...it, key: layerSortKey(it.e.path) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  const links = new HardlinkTracker();
  return keyed.map(({ e, st }) => (st ? links.link(e, st) : e));
}

async function walk(root: string, rel: string, out: Found[], signal?: AbortSignal): Promise<void> {
  assertNotAborted(signal);
  const dir = rel === "" ? root : path.join(root, rel);
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const childRel = rel === "" ? d.name : `${rel}/${d.name}`;
    const abs = path.join(root, childRel);
    const st = await lstat(abs);
    out.push({ rel: childRel, abs, st });
    if (st.isDirectory()) await walk(root, childRel, out, signal);
  }
}

async function existsInLowers(rel: string, lowerDirs: string[]): Promise<boolean> {
  // A whiteout is only needed where some lower has the name (FROM scratch: never).
  for (const l of lowerDirs) {
    try {
      await lstat(path.join(l, rel));
      return true;
    } catch {
      // next lower
    }
  }
  return false;
}
