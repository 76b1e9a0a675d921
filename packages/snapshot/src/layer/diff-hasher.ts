/**
 * The diffID of a parts layer is the sha256 of every byte of its tar, so after a one-file change most of the
 * work is re-reading and re-hashing unchanged parts. A worker thread does that on the other core while the
 * main thread goes on planning and producing parts: parts are handed over as files to read (a stored part,
 * or a new part's temp file), in order, and the worker reads and hashes them as they come.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { LayerError } from "./errors.js";
import type { Digest } from "./types.js";

export interface DiffHasher {
  /** Appends the first `size` bytes of `path` (which must hold at least that many). */
  addFile(path: string, size: number): void;
  /** Appends bytes; the caller may reuse `data` once this returns. */
  addBytes(data: Buffer): void;

  digest(): Promise<Digest>;
  /** Releases the hasher (a worker is stopped); safe after digest() and on error paths. */
  close(): void;
}

const READ_CHUNK = 1 << 22;

function readInto(path: string, size: number, buf: Buffer, each: (chunk: Buffer) => void): void {
  const fd = openSync(path, "r");
  try {
    let done = 0;
    while (done < size) {
      const want = Math.min(buf.length, size - done);
      const n = readSync(fd, buf, 0, want, done);
      if (n === 0) throw new LayerError(`${path}: read ${done} of ${size} bytes`);
      each(buf.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Hashes on the calling thread (small layers: a worker's start-up would cost more than it saves). */
export function inlineDiffHasher(): DiffHasher {
  const hash = createHash("sha256");
  let buf: Buffer | undefined;
  return {
    addFile(path, size) {
      buf ??= Buffer.allocUnsafe(READ_CHUNK);
      readInto(path, size, buf, (chunk) => hash.update(chunk));
    },
    addBytes(data) {
      hash.update(data);
    },
    digest: async () => `sha256:${hash.digest("hex")}`,
    close() {},
  };
}

// CommonJS, evaluated in the worker (kept inline so the bundled CLI needs no separate worker file).
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const hash = require("node:crypto").createHash("sha256");
const buf = Buffer.allocUnsafe(${READ_CHUNK});
let failed;
parentPort.on("message", (m) => {
  try {
    if (m.t === "end") return parentPort.postMessage(failed ? { error: failed } : { digest: "sha256:" + hash.digest("hex") });
    if (failed) return;
    if (m.t === "b") return void hash.update(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    const fd = openSync(m.path, "r");
    try {
      let done = 0;
      while (done < m.size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, m.size - done), done);
        if (n === 0) throw new Error(m.path + ": read " + done + " of " + m.size + " bytes");
        hash.update(buf.subarray(0, n));
        done += n;
      }
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    failed = String((err && err.message) || err);
  }
});
`;

/** Hashes on a worker thread; messages are processed in order, so the digest covers the parts in order. */
export function workerDiffHasher(): DiffHasher {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.unref();
  let result: Promise<Digest> | undefined;
  let closed = false;
  return {
    addFile(path, size) {
      worker.postMessage({ t: "f", path, size });
    },
    addBytes(data) {
      const copy = new Uint8Array(data.length);
      copy.set(data);
      worker.postMessage({ t: "b", data: copy }, [copy.buffer]);
    },
    digest() {
      result ??= new Promise<Digest>((resolve, reject) => {
        const onError = (err: Error): void => reject(new LayerError(`diffID worker failed: ${err.message}`, { cause: err }));
        worker.once("error", onError);
        worker.once("message", (m: { digest?: Digest; error?: string }) => {
          worker.off("error", onError);
          if (m.digest) resolve(m.digest);
          else reject(new LayerError(`diffID: ${m.error ?? "worker gave no digest"}`));
        });
        worker.postMessage({ t: "end" });
      });
      return result;
    },
    close() {
      if (closed) return;
      closed = true;
      void worker.terminate();
    },
  };
}
