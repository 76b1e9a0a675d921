import { Readable } from "node:stream";
import { createReadStream } from "node:fs";
import { type ArchiveCompression, DecompressError, decompressStream } from "./decompress.js";
import { BadTarError, NotAnArchiveError } from "./errors.js";
import { BLOCK, type DecodedHeader, checksumOk, decodeHeader, decodePaxData, isZeroBlock, paddingFor } from "./tar-format.js";
import type { LayerEntry, LayerEntryType } from "./types.js";

export interface TarReadEntry {
  entry: LayerEntry;
  /** File content (empty for other types). Read it before asking for the next entry, or it is skipped. */
  body: Readable;
}

export interface ReadLayerTarOptions {
  signal?: AbortSignal;
  /** Called once the compression has been detected. */
  onCompression?: (compression: ArchiveCompression) => void;
}

/** Pulls exact byte counts out of a chunked stream. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer | string>) {}

  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.buf = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      this.off = 0;
    }
    return true;
  }

  /** Up to `n` bytes (at least one), or null at end of input. */
  async readUpTo(n: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const take = Math.min(n, this.buf.length - this.off);
    const out = this.buf.subarray(this.off, this.off + take);
    this.off += take;
    return out;
  }

  /** Exactly `n` bytes; fewer only when the input ends (empty buffer at end of input). */
  async readExact(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const chunk = await this.readUpTo(n - got);
      if (!chunk) break;
      parts.push(chunk);
      got += chunk.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const chunk = await this.readUpTo(Math.min(left, 1 << 20));
      if (!chunk) break;
      left -= chunk.length;
    }
    return n - left;
  }
}

/** A file body that pulls from the shared reader; `finish()` skips whatever the consumer left unread. */
class EntryBody extends Readable {
  private remaining: number;
  private inflight: Promise<void> | null = null;
  private reading = false;
  private detached = false;

  constructor(
    private readonly reader: ByteReader,
    size: number,
    private readonly path: string,
  ) {
    super({ highWaterMark: 1 << 16 });
    this.remaining = size;
    if (size === 0) this.push(null);
  }

  override _read(): void {
    if (this.reading || this.detached || this.remaining === 0) return;
    this.reading = true;
    this.inflight = this.pump();
  }

  private async pump(): Promise<void> {
    try {
      const chunk = await this.reader.readUpTo(Math.min(this.remaining, 1 << 16));
      // Cleared before push(): push may call _read() at once, which must start the next pump (a flag still
      // set here would drop that call and stall the body when the source hands over big buffered chunks).
      this.reading = false;
      if (this.detached) return;
      if (!chunk) {
        this.destroy(new BadTarError("archive ends inside file content", this.path));
        return;
      }
      this.remaining -= chunk.length;
      this.push(chunk);
      if (this.remaining === 0) this.push(null);
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  async finish(): Promise<void> {
    await this.inflight;
    this.detached = true;
    if (this.remaining > 0) {
      const skipped = await this.reader.skip(this.remaining);
      if (skipped < this.remaining) throw new BadTarError("archive ends inside file content", this.path);
      this.remaining = 0;
      if (!this.destroyed) this.destroy();
    }
  }
}

const TYPES: Record<string, LayerEntryType> = {
  "0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

/**
 * Light normalisation of an archive member name: drops "./" prefixes and trailing "/". Absolute paths
 * and ".." components are deliberately kept so that extraction can refuse them by name.
 */
export function cleanMemberName(name: string): string {
  let p = name;
  while (p.startsWith("./")) p = p.slice(2);
  while (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return p === "" || p === "./" ? "." : p;
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString("utf8", 0, nul < 0 ? buf.length : nul);
}

function paxNumber(value: Buffer | undefined, key: string, path: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.toString("ascii"));
  if (!Number.isFinite(n)) throw new BadTarError(`invalid PAX ${key}`, path);
  return n;
}

/**
 * Reads a tar stream (plain, gzip, bzip2, xz or zstd — detected from magic bytes) entry by entry,
 * decoding ustar, PAX (local and global; xattrs from SCHILY.xattr.* and LIBARCHIVE.xattr.*, values kept
 * as bytes), GNU long names/links ('L'/'K') and GNU base-256 numbers. Input that does not start with a
 * valid tar header (after decompression) raises NotAnArchiveError; later damage raises BadTarError.
 * An empty archive (end-of-archive blocks only) yields nothing.
 */
export async function* readLayerTar(
  input: NodeJS.ReadableStream,
  options: ReadLayerTarOptions = {},
): AsyncGenerator<TarReadEntry> {
  const { signal } = options;
  const { compression, stream } = await decompressStream(input, signal);
  options.onCompression?.(compression);
  const reader = new ByteReader((stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]());
  let sawHeader = false;
  const fail: (reason: string, err?: unknown) => never = (reason, err) => {
    if (!sawHeader) throw new NotAnArchiveError(reason);
    throw new BadTarError(reason, undefined, err === undefined ? undefined : { cause: err });
  };
  try {
    let globalPax = new Map<string, Buffer>();
    let localPax: Map<string, Buffer> | null = null;
    let longName: string | null = null;
    let longLink: string | null = null;
    for (;;) {
      signal?.throwIfAborted();
      let block: Buffer;
      try {
        block = await reader.readExact(BLOCK);
      } catch (err) {
        if (!sawHeader) throw new NotAnArchiveError(`cannot decompress (${(err as Error).message})`);
        throw err;
      }
      if (block.length === 0) {
        if (!sawHeader) fail("empty input");
        if (localPax || longName !== null || longLink !== null) fail("archive ends after an extended header");
        return; // tolerated like Go's archive/tar: no end-of-archive blocks
      }
      if (block.length < BLOCK) fail("archive ends inside a header");
      if (isZeroBlock(block)) {
        if (!sawHeader) {
          // Two zero blocks make an empty archive; anything else is not a tar at all.
          const second = await reader.readExact(BLOCK);
          if (second.length === BLOCK && !isZeroBlock(second)) fail("first block is zero but the second is not");
          if (second.length > 0 && second.length < BLOCK) fail("input is zeros, not a tar");
        }
        return;
      }
      if (!checksumOk(block)) fail("header checksum mismatch");
      let h: DecodedHeader;
      try {
        h = decodeHeader(block);
      } catch (err) {
        return fail((err as Error).message, err);
      }
      sawHeader = true;

      const readData = async (): Promise<Buffer> => {
        if (h.size > 64 << 20) throw new BadTarError(`extended header of ${h.size} bytes is too large`, h.name);
        const data = await reader.readExact(h.size);
        if (data.length < h.size) throw new BadTarError("archive ends inside an extended header", h.name);
        await reader.skip(paddingFor(h.size));
        return data;
      };

      switch (h.typeflag) {
        case "x":
          localPax = new Map([...(localPax ?? []), ...decodePaxData(await readData(), h.name)]);
          continue;
        case "g":
          globalPax = new Map([...globalPax, ...decodePaxData(await readData(), h.name)]);
          continue;
        case "L":
          longName = cString(await readData());
          continue;
        case "K":
          longLink = cString(await readData());
          continue;
        case "V": // GNU volume label: metadata only
          await reader.skip(h.size + paddingFor(h.size));
          continue;
        default:
          break;
      }

      const pax = new Map([...globalPax, ...(localPax ?? [])]);
      const rawName = pax.get("path")?.toString("utf8") ?? longName ?? h.name;
      const path = cleanMemberName(rawName);
      let type = TYPES[h.typeflag];
      if (type === undefined) {
        if (h.typeflag === "S") throw new BadTarError("GNU sparse files are not supported", path);
        throw new BadTarError(`unsupported entry type ${JSON.stringify(h.typeflag)}`, path);
      }
      if (type === "file" && rawName.endsWith("/")) type = "dir"; // pre-POSIX directories
      if (pax.has("GNU.sparse.major") || pax.has("GNU.sparse.size")) {
        throw new BadTarError("GNU sparse files are not supported", path);
      }
      const size = paxNumber(pax.get("size"), "size", path) ?? h.size;
      const mtime = paxNumber(pax.get("mtime"), "mtime", path) ?? h.mtime;
      const entry: LayerEntry = {
        path,
        type,
        mode: h.mode & 0o7777,
        uid: paxNumber(pax.get("uid"), "uid", path) ?? h.uid,
        gid: paxNumber(pax.get("gid"), "gid", path) ?? h.gid,
        mtimeMs: Math.round(mtime * 1000),
      };
      const uname = pax.get("uname")?.toString("utf8") ?? h.uname;
      const gname = pax.get("gname")?.toString("utf8") ?? h.gname;
      if (uname) entry.uname = uname;
      if (gname) entry.gname = gname;
      if (type === "file") entry.size = size;
      if (type === "symlink" || type === "hardlink") {
        const link = pax.get("linkpath")?.toString("utf8") ?? longLink ?? h.linkname;
        entry.linkname = type === "hardlink" ? cleanMemberName(link) : link;
      }
      if (type === "char" || type === "block") {
        entry.devmajor = h.devmajor;
        entry.devminor = h.devminor;
      }
      const xattrs = collectXattrs(pax);
      if (xattrs) entry.xattrs = xattrs;
      localPax = null;
      longName = null;
      longLink = null;

      // Non-file entries may still carry data (e.g. PAX hardlinks): it is skipped.
      const body = new EntryBody(reader, type === "file" ? size : 0, path);
      yield { entry, body };
      await body.finish();
      if (type !== "file" && size > 0) {
        if ((await reader.skip(size)) < size) throw new BadTarError("archive ends inside entry data", path);
      }
      const pad = paddingFor(size);
      if ((await reader.skip(pad)) < pad) throw new BadTarError("archive ends inside padding", path);
    }
  } finally {
    stream.destroy();
  }
}

function collectXattrs(pax: Map<string, Buffer>): Record<string, Buffer> | undefined {
  let out: Record<string, Buffer> | undefined;
  for (const [key, value] of pax) {
    if (key.startsWith("SCHILY.xattr.")) {
      (out ??= {})[key.slice("SCHILY.xattr.".length)] = value;
    } else if (key.startsWith("LIBARCHIVE.xattr.")) {
      const name = decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length));
      (out ??= {})[name] = Buffer.from(value.toString("ascii"), "base64");
    }
  }
  return out;
}

/**
 * Docker's ADD test for "is this a local archive": the input decompresses (identity, gzip, bzip2, xz,
 * zstd) and starts with a readable tar entry. Returns the compression, or null for anything else
 * (including an empty archive), in which case ADD copies the file as-is.
 */
export async function detectArchive(path: string, signal?: AbortSignal): Promise<ArchiveCompression | null> {
  let compression: ArchiveCompression = "none";
  const entries = readLayerTar(createReadStream(path), {
    ...(signal ? { signal } : {}),
    onCompression: (c) => {
      compression = c;
    },
  });
  try {
    const first = await entries.next();
    return first.done ? null : compression;
  } catch (err) {
    if (err instanceof NotAnArchiveError || err instanceof BadTarError || err instanceof DecompressError) return null;
    throw err;
  } finally {
    await entries.return(undefined);
  }
}
