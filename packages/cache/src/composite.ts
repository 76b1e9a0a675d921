/**
 * Composite blobs: a blob recorded as the in-order concatenation of regular blobs (its parts). A 200 MB
 * layer stored as ~1 MiB parts costs one new part and a small record after a one-file change. Records live
 * at composites/sha256/<hex>.json and are written like blobs: temp file, fsync, rename, fsync dir.
 */
import { close, fstat, open, read } from "node:fs";
import { Readable } from "node:stream";
import type { Digest } from "./digest.js";
import { isDigest } from "./digest.js";
import { BlobNotFoundError, CacheError } from "./errors.js";
import { isErrno } from "./fs-util.js";

export interface CompositePart {
  digest: Digest;
  size: number;
}

export interface CompositeBlob {
  digest: Digest;
  size: number;
  parts: CompositePart[];
}

/** A composite record is unreadable, or a part's bytes do not match its recorded size. */
export class CompositeBlobError extends CacheError {}

export function serializeComposite(c: CompositeBlob): string {
  return JSON.stringify({ version: 1, digest: c.digest, size: c.size, parts: c.parts.map((p) => [p.digest, p.size]) });
}

export function parseComposite(text: string, digest: Digest): CompositeBlob {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CompositeBlobError(`composite record of ${digest} is not JSON`, { cause: err });
  }
  const r = raw as { version?: unknown; digest?: unknown; size?: unknown; parts?: unknown } | null;
  if (!r || r.version !== 1 || r.digest !== digest || !Number.isSafeInteger(r.size) || !Array.isArray(r.parts)) {
    throw new CompositeBlobError(`composite record of ${digest} is malformed`);
  }
  const parts: CompositePart[] = [];
  let total = 0;
  for (const p of r.parts as unknown[]) {
    if (!Array.isArray(p) || !isDigest(p[0]) || !Number.isSafeInteger(p[1]) || (p[1] as number) < 0) {
      throw new CompositeBlobError(`composite record of ${digest} has a malformed part`);
    }
    parts.push({ digest: p[0], size: p[1] as number });
    total += p[1] as number;
  }
  if (total !== r.size) throw new CompositeBlobError(`composite record of ${digest}: parts add up to ${total}, not ${String(r.size)}`);
  return { digest, size: total, parts };
}

const READ_BYTES = 1 << 20;

/**
 * Streams bytes [start, end] (inclusive, as fs.createReadStream) of a composite: one part file open at a time,
 * 1 MiB reads through the thread pool (the event loop stays free). Each part's file size is checked against
 * the record when it is opened, and a read that ends early (a part truncated meanwhile) fails the stream too.
 */
export function compositeReadStream(
  c: CompositeBlob,
  partPath: (d: Digest) => string,
  options: { start?: number; end?: number; highWaterMark?: number } = {},
): Readable {
  const start = Math.max(0, options.start ?? 0);
  const end = Math.min(c.size - 1, options.end ?? c.size - 1);
  const chunk = Math.max(64 * 1024, Math.min(options.highWaterMark ?? READ_BYTES, 8 * READ_BYTES));
  let index = 0;
  let partStart = 0; // offset of parts[index] in the composite
  while (index < c.parts.length && partStart + c.parts[index]!.size <= start) partStart += c.parts[index++]!.size;
  let pos = start; // next composite offset to emit
  let fd: number | undefined;
  // An fd is closed only when no read on it is in flight, so a recycled fd number is never read.
  let busy = false;
  const closeFd = (): void => {
    if (fd !== undefined) close(fd, () => undefined);
    fd = undefined;
  };

  const openPart = (part: CompositePart, done: (err: Error | null) => void): void => {
    open(partPath(part.digest), "r", (err, opened) => {
      if (err) return done(isErrno(err, "ENOENT") ? new BlobNotFoundError(part.digest, { cause: err }) : err);
      fstat(opened, (err2, st) => {
        if (!err2 && st.size !== part.size) {
          err2 = new CompositeBlobError(`part ${part.digest} of ${c.digest} holds ${st.size} bytes, not the recorded ${part.size}`);
        }
        if (err2) {
          close(opened, () => undefined);
          return done(err2);
        }
        fd = opened;
        done(null);
      });
    });
  };

  /** Reads the next chunk; empty parts are opened (their size checked) and passed over without a push. */
  const next = (): void => {
    if (pos > end || index >= c.parts.length) {
      closeFd();
      stream.push(null);
      return;
    }
    const part = c.parts[index]!;
    const readPart = (): void => {
      const inPart = pos - partStart;
      const want = Math.min(chunk, part.size - inPart, end - pos + 1);
      const buf = Buffer.allocUnsafe(want);
      busy = true;
      readFull(fd!, buf, inPart, (err, got) => {
        busy = false;
        if (stream.destroyed) return closeFd();
        if (!err && got < want) err = new CompositeBlobError(`part ${part.digest} of ${c.digest} ended before its recorded ${part.size} bytes`);
        if (err) return stream.destroy(err);
        pos += got;
        if (pos - partStart === part.size) {
          closeFd();
          partStart += part.size;
          index++;
        }
        if (got === 0) next();
        else stream.push(buf);
      });
    };
    if (fd !== undefined) return readPart();
    busy = true;
    openPart(part, (err) => {
      busy = false;
      if (stream.destroyed) return closeFd();
      if (err) return stream.destroy(err);
      readPart();
    });
  };

  const stream: Readable = new Readable({
    highWaterMark: chunk,
    read: next,
    destroy(err, cb) {
      if (!busy) closeFd();
      cb(err);
    },
  });
  return stream;
}

/** Reads until `buf` is full or the file ends; calls back with the byte count. */
function readFull(fd: number, buf: Buffer, position: number, cb: (err: Error | null, got: number) => void, got = 0): void {
  read(fd, buf, got, buf.length - got, position + got, (err, n) => {
    if (err) return cb(err, got);
    if (n === 0 || got + n === buf.length) return cb(null, got + n);
    readFull(fd, buf, position, cb, got + n);
  });
}
