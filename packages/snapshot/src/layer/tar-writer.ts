import { Readable } from "node:stream";
import { syncFileSource } from "./chunked-source.js";
import { LayerEntryError } from "./errors.js";
import { OPAQUE_WHITEOUT, hasSurrogates, layerSortString, normalizeLayerPath } from "./path.js";
import {
  BLOCK,
  ZERO_BLOCK,
  encodePaxData,
  encodeUstar,
  fitsOctal11,
  fitsOctal7,
  paddingFor,
} from "./tar-format.js";
import type { LayerEntry, LayerEntryType } from "./types.js";

export interface WriteLayerTarOptions {
  /** Clamp every mtime to at most this many seconds since the epoch (SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

const TYPEFLAG: Record<LayerEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

export interface Prepared {
  entry: LayerEntry;
  /** layerSortString of the path: compared as a string, or as UTF-8 bytes when some path has surrogates. */
  key: string;
}

/**
 * Streams an uncompressed, reproducible layer tar. Entries are buffered (metadata only) and sorted in
 * the order `layerSortKey` documents; content is pulled from `open()` one file at a time, so memory
 * stays bounded by the stream high-water marks, and backpressure reaches the sources.
 *
 * Header policy: ustar ("ustar\0" "00", as Go's archive/tar writes for BuildKit/containerd), directory
 * names end in "/", mode holds only the 0o7777 permission bits, mtime is whole seconds (clamped to
 * SOURCE_DATE_EPOCH), no atime/ctime, device numbers only for char/block. A PAX extended header (named
 * "<dir>/PaxHeaders.0/<base>", never a pid) is added only when something does not fit ustar: names or
 * link names over 100 bytes, user/group names over 32 bytes, ids over 0o7777777, sizes over 8 GiB - 1,
 * out-of-range mtimes, and xattrs (SCHILY.xattr.*). The archive ends with two zero blocks, unpadded.
 *
 * Hardlinks are canonicalised: within a group of paths sharing one file, the path that sorts first
 * carries the content and the others link to it, so the bytes do not depend on which name the caller
 * marked as the link.
 */
export function writeLayerTar(
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  options: WriteLayerTarOptions = {},
): Readable {
  return Readable.from(generateTar(entries, options), { objectMode: false });
}

async function* generateTar(
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  options: WriteLayerTarOptions,
): AsyncGenerator<Buffer> {
  const { signal } = options;
  signal?.throwIfAborted();
  const prepared = await prepareEntries(entries);
  for (const entry of prepared) {
    signal?.throwIfAborted();
    yield encodeEntryHeader(entry, options.sourceDateEpoch);
    if (entry.type === "file" && entry.size! > 0) yield* fileContent(entry, signal);
  }
  yield Buffer.alloc(2 * BLOCK);
}

async function* fileContent(entry: LayerEntry, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  const size = entry.size!;
  const source = entry.open ? entry.open() : syncFileSource(entry.sourcePath!, size);
  let written = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer | string>) {
      signal?.throwIfAborted();
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      written += buf.length;
      if (written > size) {
        throw new LayerEntryError(entry.path, `content is longer than the declared size ${size}`);
      }
      if (buf.length > 0) yield buf;
    }
  } finally {
    // Stop the source when the consumer went away or the content was rejected.
    const destroyable = source as { destroy?: (err?: Error) => void; readableEnded?: boolean };
    if (destroyable.readableEnded !== true) destroyable.destroy?.();
  }
  if (written !== size) {
    throw new LayerEntryError(entry.path, `content has ${written} bytes but the declared size is ${size}`);
  }
  const pad = paddingFor(size);
  if (pad > 0) yield ZERO_BLOCK.subarray(0, pad);
}

function checkId(path: string, what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new LayerEntryError(path, `invalid ${what} ${value}`);
}

function validate(raw: LayerEntry): LayerEntry {
  const path = normalizeLayerPath(raw.path);
  if (!(raw.type in TYPEFLAG)) throw new LayerEntryError(path, `unknown type ${JSON.stringify(raw.type)}`);
  checkId(path, "uid", raw.uid);
  checkId(path, "gid", raw.gid);
  if (!Number.isFinite(raw.mtimeMs)) throw new LayerEntryError(path, `invalid mtimeMs ${raw.mtimeMs}`);
  // Most entries are already canonical: keep the caller's object rather than copying tens of thousands.
  const e: LayerEntry = path === raw.path && (raw.mode & 0o7777) === raw.mode && raw.type !== "hardlink" ? raw : { ...raw, path, mode: raw.mode & 0o7777 };
  switch (e.type) {
    case "file":
      if (e.size === undefined || !Number.isSafeInteger(e.size) || e.size < 0) {
        throw new LayerEntryError(path, `file needs a non-negative integer size, got ${e.size}`);
      }
      if (e.size > 0 && !e.open && e.sourcePath === undefined) throw new LayerEntryError(path, "file with content needs open() or sourcePath");
      break;
    case "symlink":
      if (!e.linkname) throw new LayerEntryError(path, "symlink needs a linkname");
      break;
    case "hardlink":
      if (!e.linkname) throw new LayerEntryError(path, "hardlink needs a linkname");
      e.linkname = normalizeLayerPath(e.linkname);
      break;
    case "char":
    case "block":
      checkId(path, "devmajor", e.devmajor ?? 0);
      checkId(path, "devminor", e.devminor ?? 0);
      if (!fitsOctal7(e.devmajor ?? 0) || !fitsOctal7(e.devminor ?? 0)) {
        throw new LayerEntryError(path, "device number does not fit the ustar field");
      }
      break;
    default:
      break;
  }
  return e;
}

/** Validates, canonicalises hardlinks and sorts `entries` into layer order (metadata only). Internal. */
export async function prepareEntries(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>): Promise<LayerEntry[]> {
  const list: LayerEntry[] = [];
  // Arrays skip the per-entry await of for-await (measurable with tens of thousands of entries).
  if (Symbol.iterator in entries) for (const raw of entries) list.push(validate(raw));
  else for await (const raw of entries) list.push(validate(raw));
  // A COPY of a context walk arrives in layer order already: checking that costs one comparison per entry
  // and no key strings, map or sort (~30 ms for 20k entries).
  if (inStrictLayerOrder(list)) return list;
  return sortedByKey(list);
}

/** The general case: sort keys, duplicate check, hardlink groups. */
function sortedByKey(list: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, Prepared>();
  let astral = false;
  for (const entry of list) {
    if (byPath.has(entry.path)) throw new LayerEntryError(entry.path, "duplicate path in layer");
    const key = layerSortString(entry.path);
    if (!astral && hasSurrogates(key)) astral = true;
    byPath.set(entry.path, { entry, key });
  }
  const compare = keyComparator(astral);
  canonicaliseHardlinks(byPath, compare);
  return [...byPath.values()].sort(compare).map((p) => p.entry);
}

/**
 * Whether `list` is already strictly increasing in layer order (so also free of duplicates) and needs none
 * of the general case's work: no hardlinks, no opaque markers, no surrogates (whose UTF-16 order differs
 * from UTF-8 byte order). Anything else answers false and takes the general path.
 */
function inStrictLayerOrder(list: readonly LayerEntry[]): boolean {
  for (let i = 0; i < list.length; i++) {
    const e = list[i] as LayerEntry;
    if (e.type === "hardlink") return false;
    const p = e.path;
    if (p.endsWith(OPAQUE_WHITEOUT) || hasSurrogates(p)) return false;
    if (i > 0 && !layerOrderBefore((list[i - 1] as LayerEntry).path, p)) return false;
  }
  return true;
}

/** a < b in layer order for paths without surrogates or opaque markers: code units, "/" ranked lowest. */
function layerOrderBefore(a: string, b: string): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 0x2f) return true;
    if (cb === 0x2f) return false;
    return ca < cb;
  }
  return a.length < b.length;
}

type KeyCompare = (a: Prepared, b: Prepared) => number;

/** Code-unit order equals UTF-8 byte order without surrogates; with them, compare the bytes. */
function keyComparator(astral: boolean): KeyCompare {
  if (!astral) return (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const bytes = new Map<string, Buffer>();
  const of = (k: string): Buffer => {
    let b = bytes.get(k);
    if (!b) bytes.set(k, (b = Buffer.from(k, "utf8")));
    return b;
  };
  return (a, b) => Buffer.compare(of(a.key), of(b.key));
}

/** Rewrites each hardlink group so the first path in layer order holds the content. */
function canonicaliseHardlinks(byPath: Map<string, Prepared>, compare: KeyCompare): void {
  const groups = new Map<string, string[]>(); // content path -> link paths
  for (const { entry } of byPath.values()) {
    if (entry.type !== "hardlink") continue;
    let target = entry.linkname!;
    const seen = new Set<string>([entry.path]);
    for (;;) {
      const t = byPath.get(target);
      if (!t) throw new LayerEntryError(entry.path, `hardlink target ${JSON.stringify(target)} is not in the layer`);
      if (t.entry.type === "file") break;
      if (t.entry.type !== "hardlink" || seen.has(target)) {
        throw new LayerEntryError(entry.path, `hardlink target ${JSON.stringify(target)} is not a regular file`);
      }
      seen.add(target);
      target = t.entry.linkname!;
    }
    const list = groups.get(target) ?? [];
    list.push(entry.path);
    groups.set(target, list);
  }
  for (const [contentPath, links] of groups) {
    const content = byPath.get(contentPath)!;
    const all = [contentPath, ...links].map((p) => byPath.get(p)!);
    all.sort(compare);
    const primary = all[0]!;
    if (primary !== content) primary.entry = { ...content.entry, path: primary.entry.path };
    for (const member of all.slice(1)) {
      const { open: _open, size: _size, xattrs: _x, ...meta } = member === content ? content.entry : member.entry;
      member.entry = { ...meta, type: "hardlink", linkname: primary.entry.path, size: 0 };
    }
  }
}

/** The header bytes of one prepared entry (PAX extension included). Internal. */
export function encodeEntryHeader(e: LayerEntry, sourceDateEpoch: number | undefined): Buffer {
  const pax = new Map<string, Buffer>();
  const tarName = e.type === "dir" ? `${e.path}/` : e.path;
  const name = Buffer.from(tarName, "utf8");
  if (name.length > 100) pax.set("path", name);

  let linkname: Buffer | undefined;
  if (e.type === "symlink" || e.type === "hardlink") {
    linkname = Buffer.from(e.linkname!, "utf8");
    if (linkname.length > 100) pax.set("linkpath", linkname);
  }
  const uname = e.uname ? Buffer.from(e.uname, "utf8") : undefined;
  const gname = e.gname ? Buffer.from(e.gname, "utf8") : undefined;
  if (uname && uname.length > 32) pax.set("uname", uname);
  if (gname && gname.length > 32) pax.set("gname", gname);

  const numeric = (key: string, value: number, fits: (n: number) => boolean): number => {
    if (fits(value)) return value;
    pax.set(key, Buffer.from(String(value)));
    return 0;
  };
  const uid = numeric("uid", e.uid, fitsOctal7);
  const gid = numeric("gid", e.gid, fitsOctal7);
  const size = numeric("size", e.type === "file" ? e.size! : 0, fitsOctal11);
  let seconds = Math.floor(e.mtimeMs / 1000);
  if (sourceDateEpoch !== undefined && seconds > sourceDateEpoch) seconds = Math.floor(sourceDateEpoch);
  const mtime = numeric("mtime", seconds, fitsOctal11);

  if (e.xattrs && e.type !== "hardlink") {
    for (const [key, value] of Object.entries(e.xattrs)) pax.set(`SCHILY.xattr.${key}`, Buffer.from(value));
  }

  const header = encodeUstar({
    name,
    mode: e.mode & 0o7777,
    uid,
    gid,
    size,
    mtime,
    typeflag: TYPEFLAG[e.type],
    ...(linkname ? { linkname } : {}),
    ...(uname ? { uname } : {}),
    ...(gname ? { gname } : {}),
    ...(e.type === "char" || e.type === "block" ? { dev: { major: e.devmajor ?? 0, minor: e.devminor ?? 0 } } : {}),
  });
  if (pax.size === 0) return header;

  const data = encodePaxData(pax);
  const slash = e.path.lastIndexOf("/");
  const paxName = Buffer.from(
    slash < 0 ? `PaxHeaders.0/${e.path}` : `${e.path.slice(0, slash)}/PaxHeaders.0/${e.path.slice(slash + 1)}`,
    "utf8",
  );
  const paxHeader = encodeUstar({ name: paxName, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime, typeflag: "x" });
  return Buffer.concat([paxHeader, data, ZERO_BLOCK.subarray(0, paddingFor(data.length)), header]);
}

/** Whole seconds written for the entry's mtime (clamped to SOURCE_DATE_EPOCH), as encodeEntryHeader does. */
function headerSeconds(e: LayerEntry, sourceDateEpoch: number | undefined): number {
  const seconds = Math.floor(e.mtimeMs / 1000);
  return sourceDateEpoch !== undefined && seconds > sourceDateEpoch ? Math.floor(sourceDateEpoch) : seconds;
}

/**
 * A string that determines encodeEntryHeader's bytes: equal identities give equal headers. It lists every
 * input encodeEntryHeader reads; keep the two in step (tests change each field and compare). Internal.
 */
export function entryHeaderIdentity(e: LayerEntry, sourceDateEpoch: number | undefined): string {
  let id = `${e.type}\0${e.path}\0${e.mode & 0o7777}\0${e.uid}\0${e.gid}\0${headerSeconds(e, sourceDateEpoch)}`;
  if (e.type === "file") id += `\0s${e.size}`;
  if (e.type === "symlink" || e.type === "hardlink") id += `\0l${e.linkname}`;
  if (e.uname) id += `\0u${e.uname}`;
  if (e.gname) id += `\0g${e.gname}`;
  if (e.type === "char" || e.type === "block") id += `\0d${e.devmajor ?? 0},${e.devminor ?? 0}`;
  if (e.xattrs && e.type !== "hardlink") {
    for (const [k, v] of Object.entries(e.xattrs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) id += `\0x${k}=${v.toString("base64")}`;
  }
  return id;
}

/** encodeEntryHeader(e).length without building the header, except when a PAX extension is needed. Internal. */
export function entryHeaderLength(e: LayerEntry, sourceDateEpoch: number | undefined): number {
  const nameBytes = Buffer.byteLength(e.type === "dir" ? `${e.path}/` : e.path, "utf8");
  const link = e.type === "symlink" || e.type === "hardlink" ? Buffer.byteLength(e.linkname!, "utf8") : 0;
  const pax =
    nameBytes > 100 ||
    link > 100 ||
    (e.uname !== undefined && e.uname !== "" && Buffer.byteLength(e.uname, "utf8") > 32) ||
    (e.gname !== undefined && e.gname !== "" && Buffer.byteLength(e.gname, "utf8") > 32) ||
    !fitsOctal7(e.uid) ||
    !fitsOctal7(e.gid) ||
    (e.type === "file" && !fitsOctal11(e.size!)) ||
    !fitsOctal11(headerSeconds(e, sourceDateEpoch)) ||
    (e.xattrs !== undefined && e.type !== "hardlink" && Object.keys(e.xattrs).length > 0);
  return pax ? encodeEntryHeader(e, sourceDateEpoch).length : BLOCK;
}
