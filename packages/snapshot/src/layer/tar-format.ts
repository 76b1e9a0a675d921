/**
 * POSIX ustar header encoding/decoding plus PAX extended records. Kept hand-written (rather than
 * tar-stream's pack/extract) so every header byte is under our control for reproducible digests, and
 * so PAX values stay bytes: tar-stream decodes PAX values as UTF-8 text, which corrupts binary xattrs
 * such as security.capability.
 */
import { BadTarError } from "./errors.js";

export const BLOCK = 512;
export const ZERO_BLOCK = Buffer.alloc(BLOCK);

const OCTAL_MAX_7 = 0o7777777; // 8-byte fields: 7 digits + NUL
const OCTAL_MAX_11 = 0o77777777777; // 12-byte fields: 11 digits + NUL

/** ustar field offsets/lengths (POSIX.1-1988 layout). */
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

export interface UstarFields {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: Buffer;
  uname?: Buffer;
  gname?: Buffer;
  /** Only written for character/block devices; other entries leave the fields NUL. */
  dev?: { major: number; minor: number };
}

export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Copies `value` into the field; returns the sum of the bytes written (for the header checksum). */
function putBytes(block: Buffer, [off, len]: readonly [number, number], value: Buffer): number {
  const n = Math.min(len, value.length);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const b = value[i]!;
    block[off + i] = b;
    sum += b;
  }
  return sum;
}

/** Zero-padded octal digits then NUL, written byte by byte; returns the sum of the bytes written. */
function putOctal(block: Buffer, [off, len]: readonly [number, number], value: number): number {
  let v = value;
  let sum = 0;
  for (let i = off + len - 2; i >= off; i--) {
    const b = 0x30 + (v % 8);
    block[i] = b;
    sum += b;
    v = Math.floor(v / 8);
  }
  block[off + len - 1] = 0;
  return sum;
}

const MAGIC_VERSION = Buffer.from("ustar\x0000", "latin1");
const MAGIC_VERSION_SUM = MAGIC_VERSION.reduce((n, b) => n + b, 0);
/** The checksum field counts as eight spaces while the checksum is computed. */
const CHKSUM_SPACES_SUM = 8 * 0x20;

/**
 * Encodes one 512-byte ustar header. Callers guarantee every number fits its octal field. The checksum is
 * summed as fields are written (every other byte is zero), not by a pass over the block.
 */
export function encodeUstar(h: UstarFields): Buffer {
  // From the shared pool (allocUnsafe) and zeroed: cheaper than a fresh zeroed allocation per header.
  const block = Buffer.allocUnsafe(BLOCK).fill(0);
  let sum = CHKSUM_SPACES_SUM + MAGIC_VERSION_SUM;
  sum += putBytes(block, F.name, h.name);
  sum += putOctal(block, F.mode, h.mode);
  sum += putOctal(block, F.uid, h.uid);
  sum += putOctal(block, F.gid, h.gid);
  sum += putOctal(block, F.size, h.size);
  sum += putOctal(block, F.mtime, h.mtime);
  const typeflag = h.typeflag.charCodeAt(0);
  block[F.typeflag[0]] = typeflag;
  sum += typeflag;
  if (h.linkname) sum += putBytes(block, F.linkname, h.linkname);
  block.set(MAGIC_VERSION, F.magic[0]);
  if (h.uname) sum += putBytes(block, F.uname, h.uname);
  if (h.gname) sum += putBytes(block, F.gname, h.gname);
  if (h.dev) {
    sum += putOctal(block, F.devmajor, h.dev.major);
    sum += putOctal(block, F.devminor, h.dev.minor);
  }
  // Stored as 6 octal digits, NUL, space.
  for (let i = F.chksum[0] + 5; i >= F.chksum[0]; i--) {
    block[i] = 0x30 + (sum % 8);
    sum = Math.floor(sum / 8);
  }
  block[F.chksum[0] + 6] = 0;
  block[F.chksum[0] + 7] = 0x20;
  return block;
}

export const fitsOctal7 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= OCTAL_MAX_7;
export const fitsOctal11 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= OCTAL_MAX_11;

/** One PAX record "<len> <key>=<value>\n", where <len> counts the whole record including itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // " " + "=" + "\n"
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, "utf8"), value, Buffer.from("\n")]);
}

/** Encodes PAX records sorted by key (byte order) so the extended header is reproducible. */
export function encodePaxData(records: Map<string, Buffer>): Buffer {
  const keys = [...records.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return Buffer.concat(keys.map((k) => paxRecord(k, records.get(k)!)));
}

export function decodePaxData(data: Buffer, entryPath?: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers NUL-pad the data
    const space = data.indexOf(0x20, pos);
    if (space < 0) throw new BadTarError("malformed PAX record (no length)", entryPath);
    const len = Number(data.toString("ascii", pos, space));
    if (!Number.isInteger(len) || len <= space - pos || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new BadTarError("malformed PAX record length", entryPath);
    }
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new BadTarError("malformed PAX record (no '=')", entryPath);
    out.set(record.toString("utf8", 0, eq), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

export interface DecodedHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function cString(block: Buffer, [off, len]: readonly [number, number]): string {
  const end = block.indexOf(0, off);
  return block.toString("utf8", off, end < 0 || end > off + len ? off + len : end);
}

/** Numeric field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(block: Buffer, [off, len]: readonly [number, number], field: string): number {
  const first = block[off]!;
  if (first & 0x80) {
    if (first === 0xff) throw new BadTarError(`negative base-256 ${field}`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + block[off + i]!;
    if (!Number.isSafeInteger(v)) throw new BadTarError(`${field} too large`);
    return v;
  }
  const text = block.toString("ascii", off, off + len).replace(/[\0 ]+$/, "").replace(/^[ ]+/, "").replace(/\0.*$/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new BadTarError(`invalid ${field} field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

/** True when the stored checksum matches (unsigned, or the signed sum some historic tars wrote). */
export function checksumOk(block: Buffer): boolean {
  const stored = block.toString("ascii", F.chksum[0], F.chksum[0] + F.chksum[1]).replace(/[\0 ]+$/, "").trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  const want = parseInt(stored, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

export function decodeHeader(block: Buffer): DecodedHeader {
  let name = cString(block, F.name);
  const magic = block.toString("ascii", F.magic[0], F.magic[0] + 6);
  // POSIX ustar stores a path prefix; GNU's "ustar  " magic reuses that area for atime/ctime.
  if (magic === "ustar\0") {
    const prefix = cString(block, F.prefix);
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  const isUstar = magic.startsWith("ustar");
  const typeflagByte = block[F.typeflag[0]]!;
  return {
    name,
    mode: parseNumber(block, F.mode, "mode"),
    uid: parseNumber(block, F.uid, "uid"),
    gid: parseNumber(block, F.gid, "gid"),
    size: parseNumber(block, F.size, "size"),
    mtime: parseNumber(block, F.mtime, "mtime"),
    typeflag: typeflagByte === 0 ? "0" : String.fromCharCode(typeflagByte),
    linkname: cString(block, F.linkname),
    uname: isUstar ? cString(block, F.uname) : "",
    gname: isUstar ? cString(block, F.gname) : "",
    devmajor: isUstar ? parseNumber(block, F.devmajor, "devmajor") : 0,
    devminor: isUstar ? parseNumber(block, F.devminor, "devminor") : 0,
  };
}
