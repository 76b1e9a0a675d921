// Read access to the files of an image source that is either a directory or a tar archive, so the OCI
// layout and docker-archive readers are written once. Tar archives are indexed by a pass over their
// headers only (member data is skipped with positioned reads), then members stream from their offsets.
import { createReadStream } from "node:fs";
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { ImageNotFoundError, InvalidImageError, UnsupportedSourceError } from "./errors.js";

export interface FileTree {
  /** Human-readable location, for messages. */
  readonly location: string;
  has(name: string): Promise<boolean>;
  size(name: string): Promise<number>;
  /** Reads a small member whole (JSON documents); refuses anything over `limit` bytes. */
  readSmall(name: string, limit?: number): Promise<Buffer>;
  /** Streams a member; `head` bytes only when given. */
  open(name: string, options?: { head?: number }): Readable;
}

const SMALL_LIMIT = 16 * 1024 * 1024;

/** Canonical member name: no "./" prefix, no leading or trailing "/". */
function clean(name: string): string {
  let p = name;
  while (p.startsWith("./")) p = p.slice(2);
  return p.replace(/^\/+/, "").replace(/\/+$/, "");
}

export class DirTree implements FileTree {
  constructor(readonly location: string) {}

  #path(name: string): string {
    const rel = clean(name);
    if (rel.split("/").includes("..")) throw new InvalidImageError(`${this.location}: path ${JSON.stringify(name)} leaves the directory`);
    return path.join(this.location, rel);
  }

  async has(name: string): Promise<boolean> {
    return (await stat(this.#path(name)).catch(() => undefined))?.isFile() ?? false;
  }

  async size(name: string): Promise<number> {
    try {
      return (await stat(this.#path(name))).size;
    } catch (err) {
      throw new ImageNotFoundError(`${this.location}: ${name} is missing`, { cause: err });
    }
  }

  async readSmall(name: string, limit = SMALL_LIMIT): Promise<Buffer> {
    const size = await this.size(name);
    if (size > limit) throw new InvalidImageError(`${this.location}: ${name} is ${size} bytes, too large for a metadata file`);
    return readFile(this.#path(name));
  }

  open(name: string, options: { head?: number } = {}): Readable {
    return createReadStream(this.#path(name), options.head !== undefined ? { start: 0, end: Math.max(0, options.head - 1) } : {});
  }
}

interface Member {
  offset: number;
  size: number;
}

const BLOCK = 512;

function octal(field: Buffer): number {
  // GNU base-256 for sizes of 8 GiB and more: high bit of the first byte set.
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString("ascii").replace(/\0.*$/s, "").trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString("utf8", 0, nul < 0 ? buf.length : nul);
}

function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0) break;
    const len = Number.parseInt(data.toString("ascii", off, space), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.toString("utf8", space + 1, off + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    off += len;
  }
  return out;
}

/** A tar archive (uncompressed: members must be addressable by offset) read through a member index. */
export class TarTree implements FileTree {
  private constructor(
    readonly location: string,
    private readonly members: Map<string, Member>,
  ) {}

  static async open(file: string, signal?: AbortSignal): Promise<TarTree> {
    let fh: FileHandle;
    try {
      fh = await open(file, "r");
    } catch (err) {
      throw new ImageNotFoundError(`${file}: cannot open archive (${(err as Error).message})`, { cause: err });
    }
    try {
      return new TarTree(file, await indexTar(fh, file, signal));
    } finally {
      await fh.close();
    }
  }

  #member(name: string): Member {
    const m = this.members.get(clean(name));
    if (!m) throw new ImageNotFoundError(`${this.location}: archive has no member ${name}`);
    return m;
  }

  async has(name: string): Promise<boolean> {
    return this.members.has(clean(name));
  }

  async size(name: string): Promise<number> {
    return this.#member(name).size;
  }

  async readSmall(name: string, limit = SMALL_LIMIT): Promise<Buffer> {
    const m = this.#member(name);
    if (m.size > limit) throw new InvalidImageError(`${this.location}: ${name} is ${m.size} bytes, too large for a metadata file`);
    const fh = await open(this.location, "r");
    try {
      const buf = Buffer.alloc(m.size);
      const { bytesRead } = await fh.read(buf, 0, m.size, m.offset);
      if (bytesRead < m.size) throw new InvalidImageError(`${this.location}: archive ends inside ${name}`);
      return buf;
    } finally {
      await fh.close();
    }
  }

  open(name: string, options: { head?: number } = {}): Readable {
    const m = this.#member(name);
    const length = options.head !== undefined ? Math.min(options.head, m.size) : m.size;
    if (length === 0) return Readable.from([]);
    return createReadStream(this.location, { start: m.offset, end: m.offset + length - 1 });
  }
}

/** One pass over the headers: every regular file's data offset and size (later duplicates win, as tar extraction does). */
async function indexTar(fh: FileHandle, file: string, signal?: AbortSignal): Promise<Map<string, Member>> {
  const members = new Map<string, Member>();
  const total = (await fh.stat()).size;
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let longName: string | undefined;
  let pax: Map<string, string> | undefined;
  let sawHeader = false;
  const readData = async (offset: number, size: number): Promise<Buffer> => {
    if (size > 16 * 1024 * 1024) throw new InvalidImageError(`${file}: extended header of ${size} bytes`);
    const buf = Buffer.alloc(size);
    await fh.read(buf, 0, size, offset);
    return buf;
  };
  while (pos + BLOCK <= total) {
    signal?.throwIfAborted();
    const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
    if (bytesRead < BLOCK) break;
    if (header.every((b) => b === 0)) break;
    if (!sawHeader && !isTarHeader(header)) {
      const magic = header.subarray(0, 4);
      const compressed = (magic[0] === 0x1f && magic[1] === 0x8b) || magic.toString("latin1").startsWith("BZh") || magic[0] === 0xfd || magic[0] === 0x28;
      throw compressed
        ? new UnsupportedSourceError(`${file}: compressed archives are not supported; decompress it first (members are read by offset)`)
        : new InvalidImageError(`${file}: not a tar archive`);
    }
    sawHeader = true;
    const size = octal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156]!);
    const dataStart = pos + BLOCK;
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      pax = paxRecords(await readData(dataStart, size));
      continue;
    }
    if (type === "g") continue;
    if (type === "L") {
      longName = cString(await readData(dataStart, size));
      continue;
    }
    const prefix = header.subarray(257, 263).toString("latin1").startsWith("ustar") ? cString(header.subarray(345, 500)) : "";
    const short = cString(header.subarray(0, 100));
    const name = pax?.get("path") ?? longName ?? (prefix ? `${prefix}/${short}` : short);
    const realSize = pax?.has("size") ? Number(pax.get("size")) : size;
    if (pax?.has("size")) pos = dataStart + Math.ceil(realSize / BLOCK) * BLOCK;
    pax = undefined;
    longName = undefined;
    if (type === "0" || type === "\0" || type === "7") members.set(clean(name), { offset: dataStart, size: realSize });
  }
  if (!sawHeader) throw new InvalidImageError(`${file}: empty or not a tar archive`);
  return members;
}

function isTarHeader(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === octal(block.subarray(148, 156));
}
