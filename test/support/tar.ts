/**
 * A streaming tar reader (ustar, GNU long names, PAX headers incl. SCHILY.xattr) for inspecting image
 * archives and layers without extracting them. Entry bodies are streamed; only headers are buffered.
 */
import { ImageFormatError } from "./errors.js";

export type TarEntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

export interface TarHeader {
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, string>;
  /** Byte offset of the entry's data in the (uncompressed) archive. */
  dataOffset: number;
}

/** Pulls exact byte counts out of an async chunk iterator, tracking the absolute position. */
class ByteSource {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  position = 0;
  constructor(private readonly it: AsyncIterator<Buffer | Uint8Array | string>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        const chunk = typeof r.value === "string" ? Buffer.from(r.value) : Buffer.from(r.value);
        this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      }
    }
    return this.buf.length >= n;
  }

  /** Exactly n bytes, or undefined at end of input. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.position += n;
    return out;
  }

  /** Up to n bytes in chunks as they arrive (bounded memory). */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!this.buf.length && !(await this.fill(1))) throw new ImageFormatError("tar: unexpected end of archive");
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.position += take;
      left -= take;
      yield out;
    }
  }

  /** Consume the rest of the input (tar writers pad archives to a record size after the end marker). */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) {
      // discard
    }
  }
}

function cstr(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString("utf8");
}

function num(b: Buffer, start: number, len: number): number {
  const field = b.subarray(start, start + len);
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as a marker.
    let v = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + field[i]!;
    return v;
  }
  const s = cstr(b, start, len).trim();
  return s ? Number.parseInt(s, 8) : 0;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number.parseInt(data.subarray(i, sp).toString("ascii"), 10);
    if (!Number.isFinite(len) || len <= 0) throw new ImageFormatError("tar: malformed PAX record");
    const rec = data.subarray(sp + 1, i + len - 1); // drop trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out[rec.subarray(0, eq).toString("utf8")] = rec.subarray(eq + 1).toString("utf8");
    i += len;
  }
  return out;
}

const pad512 = (n: number): number => (512 - (n % 512)) % 512;

export interface TarEntry {
  header: TarHeader;
  /** The entry's data; must be consumed (or left alone — unread data is skipped) before the next entry. */
  body: AsyncIterable<Buffer>;
}

/**
 * Iterate the entries of a tar stream. Consumers may read `body` or ignore it; whatever is not read is
 * skipped before the next header.
 */
export async function* readTar(input: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await src.read(512);
    if (!block || block.every((x) => x === 0)) {
      // End marker. Drain the padding so whoever tees the input (digests) sees all of it.
      await src.drain();
      return;
    }
    const typeflag = String.fromCharCode(block[156]!);
    const size = num(block, 124, 12);
    if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
      const data = await src.read(size + pad512(size));
      if (!data) throw new ImageFormatError("tar: truncated extended header");
      const payload = data.subarray(0, size);
      if (typeflag === "x") pax = { ...pax, ...parsePax(payload) };
      else if (typeflag === "g") globalPax = { ...globalPax, ...parsePax(payload) };
      else if (typeflag === "L") longName = cstr(payload, 0, payload.length);
      else longLink = cstr(payload, 0, payload.length);
      continue;
    }
    const type = TYPES[typeflag];
    const ext = { ...globalPax, ...pax };
    const magic = block.subarray(257, 262).toString("ascii");
    const prefix = magic === "ustar" ? cstr(block, 345, 155) : "";
    const name = cstr(block, 0, 100);
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(ext)) if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice(13)] = v;
    const realSize = ext.size !== undefined ? Number(ext.size) : size;
    const header: TarHeader = {
      path: ext.path ?? longName ?? (prefix ? `${prefix}/${name}` : name),
      type: type ?? "file",
      mode: num(block, 100, 8) & 0o7777,
      uid: ext.uid !== undefined ? Number(ext.uid) : num(block, 108, 8),
      gid: ext.gid !== undefined ? Number(ext.gid) : num(block, 116, 8),
      size: type === "file" || type === undefined ? realSize : 0,
      mtime: ext.mtime !== undefined ? Number(ext.mtime) : num(block, 136, 12),
      linkname: ext.linkpath ?? longLink ?? cstr(block, 157, 100),
      devmajor: num(block, 329, 8),
      devminor: num(block, 337, 8),
      xattrs,
      dataOffset: src.position,
    };
    pax = {};
    longName = undefined;
    longLink = undefined;
    if (type === undefined) {
      // Unknown entry kinds (e.g. GNU sparse) are not expected in image layers.
      throw new ImageFormatError(`tar: unsupported entry type "${typeflag}" for ${header.path}`);
    }
    let consumed = false;
    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => {
        if (consumed) throw new ImageFormatError("tar: entry body read twice");
        consumed = true;
        return src.chunks(realSize)[Symbol.asyncIterator]();
      },
    };
    const before = src.position;
    yield { header, body };
    const read = src.position - before;
    await src.skip(realSize - read);
    await src.skip(pad512(realSize));
  }
}
