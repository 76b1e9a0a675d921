import { spawn } from "node:child_process";
import { PassThrough, Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { LayerError } from "./errors.js";

export type ArchiveCompression = "none" | "gzip" | "bzip2" | "xz" | "zstd";

/** Identifies a compression format by its magic bytes (needs up to 6 bytes; shorter input is "none"). */
export function detectCompression(head: Uint8Array): ArchiveCompression {
  const starts = (...magic: number[]): boolean => magic.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b, 0x08)) return "gzip";
  if (starts(0x42, 0x5a, 0x68)) return "bzip2"; // "BZh"
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz";
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  return "none";
}

/** A decompressor binary failed or is missing. */
export class DecompressError extends LayerError {}

const HEAD_BYTES = 6;

/**
 * Peeks at `input`, picks the decompressor by magic bytes and returns the decompressed stream. gzip uses
 * zlib; bzip2, xz and zstd use the system binaries (present on Debian; no pure-JS dependency), run as
 * streaming filters that are killed when the returned stream is destroyed early.
 */
export async function decompressStream(
  input: NodeJS.ReadableStream,
  signal?: AbortSignal,
): Promise<{ compression: ArchiveCompression; stream: Readable }> {
  const iterator = (input as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const headChunks: Buffer[] = [];
  let headLength = 0;
  let ended = false;
  while (headLength < HEAD_BYTES) {
    const r = await iterator.next();
    if (r.done) {
      ended = true;
      break;
    }
    const buf = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
    headChunks.push(buf);
    headLength += buf.length;
  }
  const head = Buffer.concat(headChunks);
  const raw = Readable.from(
    (async function* () {
      try {
        if (head.length > 0) yield head;
        if (ended) return;
        for (;;) {
          const r = await iterator.next();
          if (r.done) return;
          yield typeof r.value === "string" ? Buffer.from(r.value) : r.value;
        }
      } finally {
        await iterator.return?.();
      }
    })(),
    { objectMode: false },
  );
  const compression = detectCompression(head);
  const stream = decompressor(compression, raw, signal);
  return { compression, stream };
}

function decompressor(compression: ArchiveCompression, raw: Readable, signal: AbortSignal | undefined): Readable {
  switch (compression) {
    case "none":
      return raw;
    case "gzip": {
      const gunzip = createGunzip();
      pipeline(raw, gunzip, () => {});
      return gunzip;
    }
    case "bzip2":
      return spawnFilter("bzip2", ["-dc"], raw, signal);
    case "xz":
      return spawnFilter("xz", ["-dc"], raw, signal);
    case "zstd":
      return spawnFilter("zstd", ["-dcq"], raw, signal);
  }
}

/** Runs `cmd` with `input` on stdin; the result streams its stdout and errors if it exits non-zero. */
export function spawnFilter(cmd: string, args: string[], input: Readable, signal?: AbortSignal): Readable {
  const out = new PassThrough();
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], ...(signal ? { signal } : {}) });
  let stderr = "";
  let exited = false;
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  child.on("error", (err) => {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    out.destroy(new DecompressError(missing ? `${cmd} is not installed` : `${cmd} failed: ${err.message}`, { cause: err }));
  });
  // The child may exit before reading all input (bad data): EPIPE on stdin is expected then.
  pipeline(input, child.stdin, () => {});
  child.stdout.pipe(out, { end: false });
  child.on("close", (code, sig) => {
    exited = true;
    if (out.destroyed) return;
    if (code === 0) out.end();
    else out.destroy(new DecompressError(`${cmd} exited with ${code ?? sig}: ${stderr.trim()}`));
  });
  out.on("close", () => {
    if (!exited) child.kill("SIGKILL");
    input.destroy();
  });
  return out;
}
