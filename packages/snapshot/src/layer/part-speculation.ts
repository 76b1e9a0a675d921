/**
 * After a few files changed, a parts layer's new tar is, almost always, the previous one with those files'
 * headers and contents replaced: the other parts are reused as they are (see tar-parts.ts). The diffID must
 * still hash every byte (~200 MB for a large context), and normally that starts only once the layer is
 * planned. Here the new part list is guessed from the previous build's index alone — the parts holding a
 * changed file are rebuilt by re-encoding that entry's header with its new size and mtime and splicing in
 * its new content — and hashed at once on the helper thread, while the build plans the layer the usual way.
 *
 * Nothing trusts the guess: writeTarParts compares it with the parts it actually produced and, on any
 * difference (mode or owner changed, a part boundary moved, a path that is not where it was), cancels it and
 * hashes the real parts. A wrong guess costs time, never a wrong digest.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { workerDiffHasher } from "./diff-hasher.js";
import { hasSurrogates, layerSortString } from "./path.js";
import { BLOCK, decodeHeader, decodePaxData, isZeroBlock, paddingFor } from "./tar-format.js";
import type { SpeculativeDiffID, TarPartsIndex } from "./tar-parts.js";
import { encodeEntryHeader } from "./tar-writer.js";
import type { Digest, LayerEntry } from "./types.js";

/**
 * An entry of the layer that changed since the previous build: a regular file with new content (so size and
 * mtime), or a directory with a new mtime (a COPY stamps its destination's directories with the newest
 * mtime it copies, which an edit moves).
 */
export type ChangedLayerFile =
  | {
      type: "file";
      /** Path in the layer (no leading "/"). */
      path: string;
      size: number;
      mtimeMs: number;
      /** Where its new content is read from. */
      sourcePath: string;
    }
  | { type: "dir"; path: string; mtimeMs: number };

/** More changed files than this: plan and hash normally. */
const MAX_CHANGED = 64;

/**
 * Starts hashing the guessed part list, or returns undefined when no guess can be made (no part index with
 * entry paths, too many changes, a file not found where the index says, a big file spanning parts, …).
 * `partPath` names the file holding a stored part.
 */
export function speculateDiffID(
  previous: TarPartsIndex,
  changed: readonly ChangedLayerFile[],
  partPath: (digest: Digest) => string,
  sourceDateEpoch?: number,
): SpeculativeDiffID | undefined {
  if (changed.length === 0 || changed.length > MAX_CHANGED) return undefined;
  const parts = previous.parts;
  // Parts that start with a header, by that entry's layer order key.
  const starts: { index: number; key: string }[] = [];
  for (let i = 0; i < parts.length; i++) {
    const first = parts[i]!.first;
    if (first === undefined) continue;
    if (hasSurrogates(first)) return undefined;
    starts.push({ index: i, key: layerSortString(first) });
  }
  if (starts.length === 0) return undefined;

  const byPart = new Map<number, Map<string, ChangedLayerFile>>();
  for (const c of changed) {
    if (hasSurrogates(c.path)) return undefined;
    const key = layerSortString(c.path);
    // The last part starting at or before the file's place in layer order holds its header.
    let lo = 0;
    let hi = starts.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]!.key <= key) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (at < 0) return undefined;
    const index = starts[at]!.index;
    let group = byPart.get(index);
    if (!group) byPart.set(index, (group = new Map()));
    group.set(c.path, c);
  }

  const replaced = new Map<number, Buffer>();
  for (const [index, group] of byPart) {
    const ref = parts[index]!;
    let old: Buffer;
    try {
      old = readFileSync(partPath(ref.digest));
    } catch {
      return undefined;
    }
    if (old.length !== ref.size) return undefined;
    const patched = patchPart(old, group, sourceDateEpoch);
    if (!patched) return undefined;
    replaced.set(index, patched);
  }

  const guess = parts.map((p, i) => {
    const bytes = replaced.get(i);
    return bytes ? { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest, size: bytes.length } : { digest: p.digest, size: p.size };
  });
  const hasher = workerDiffHasher();
  for (let i = 0; i < parts.length; i++) {
    const bytes = replaced.get(i);
    if (bytes) hasher.addBytes(bytes);
    else hasher.addFile(partPath(parts[i]!.digest), parts[i]!.size);
  }
  let result: Promise<Digest> | undefined;
  return {
    parts: guess,
    digest: () => (result ??= hasher.digest()),
    cancel: () => hasher.close(),
  };
}

/**
 * `old` (one stored part: whole entries, then possibly the start of a big file or the end-of-archive
 * blocks) with every entry in `changes` re-encoded and its content replaced; undefined when the part does
 * not look as expected or a change is not found in it.
 */
export function patchPart(old: Buffer, changes: ReadonlyMap<string, ChangedLayerFile>, sourceDateEpoch?: number): Buffer | undefined {
  const out: Buffer[] = [];
  const found = new Set<string>();
  let pos = 0;
  while (pos < old.length) {
    if (pos + BLOCK > old.length) return undefined;
    const start = pos;
    let block = old.subarray(pos, pos + BLOCK);
    if (isZeroBlock(block)) {
      out.push(old.subarray(pos)); // end-of-archive blocks
      break;
    }
    let pax: Map<string, Buffer> | undefined;
    let h = decodeHeader(block);
    pos += BLOCK;
    if (h.typeflag === "x") {
      const end = pos + h.size;
      if (end + paddingFor(h.size) + BLOCK > old.length) return undefined;
      pax = decodePaxData(old.subarray(pos, end));
      pos = end + paddingFor(h.size);
      block = old.subarray(pos, pos + BLOCK);
      h = decodeHeader(block);
      pos += BLOCK;
    } else if (h.typeflag === "g" || h.typeflag === "L" || h.typeflag === "K") return undefined;
    const size = paxNumber(pax, "size") ?? h.size;
    const contentEnd = pos + size + paddingFor(size);
    const path = (pax?.get("path")?.toString("utf8") ?? h.name).replace(/\/$/, "");
    const change = changes.get(path);
    if (!change) {
      if (contentEnd > old.length) {
        out.push(old.subarray(start)); // a big file continuing in the next part
        break;
      }
      out.push(old.subarray(start, contentEnd));
      pos = contentEnd;
      continue;
    }
    if (contentEnd > old.length) return undefined;
    if (change.type === "dir") {
      if (h.typeflag !== "5" || size !== 0 || pax !== undefined) return undefined;
      const dir: LayerEntry = { path, type: "dir", mode: h.mode, uid: h.uid, gid: h.gid, mtimeMs: change.mtimeMs, ...(h.uname ? { uname: h.uname } : {}), ...(h.gname ? { gname: h.gname } : {}) };
      out.push(encodeEntryHeader(dir, sourceDateEpoch));
      found.add(path);
      pos = contentEnd;
      continue;
    }
    if (h.typeflag !== "0") return undefined;
    const xattrs: Record<string, Buffer> = {};
    for (const [k, v] of pax ?? []) if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice("SCHILY.xattr.".length)] = v;
    const entry: LayerEntry = {
      path,
      type: "file",
      mode: h.mode,
      uid: paxNumber(pax, "uid") ?? h.uid,
      gid: paxNumber(pax, "gid") ?? h.gid,
      size: change.size,
      mtimeMs: change.mtimeMs,
      ...(h.uname || pax?.has("uname") ? { uname: pax?.get("uname")?.toString("utf8") ?? h.uname } : {}),
      ...(h.gname || pax?.has("gname") ? { gname: pax?.get("gname")?.toString("utf8") ?? h.gname } : {}),
      ...(Object.keys(xattrs).length > 0 ? { xattrs } : {}),
    };
    const content = readExactly(change.sourcePath, change.size);
    if (!content) return undefined;
    out.push(encodeEntryHeader(entry, sourceDateEpoch), content, Buffer.alloc(paddingFor(change.size)));
    found.add(path);
    pos = contentEnd;
  }
  if (found.size !== changes.size) return undefined;
  return Buffer.concat(out);
}

function paxNumber(pax: Map<string, Buffer> | undefined, key: string): number | undefined {
  const v = pax?.get(key);
  if (v === undefined) return undefined;
  const n = Number(v.toString("ascii"));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The file's bytes if it holds exactly `size` of them now. */
function readExactly(file: string, size: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > size) return undefined;
    }
    return n === size ? buf.subarray(0, size) : undefined;
  } finally {
    closeSync(fd);
  }
}
