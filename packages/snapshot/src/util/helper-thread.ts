/**
 * One worker thread per process that does a build's two large, parallelizable chores on the second core:
 * lstat-ing half of a big context (walk-snapshot.ts) and hashing a layer's tar for its diffID
 * (diff-hasher.ts, part-speculation.ts). The CLI launcher starts its worker before kiln loads, and a build
 * that opens its context starts it otherwise, so it has booted by the time it can help (a worker's
 * start-up, ~20-60 ms, used to sit on the critical path of a one-file rebuild).
 *
 * The thread never keeps the process alive on its own: it is unref'd, and a message listener (which refs
 * it) is attached only while a request waits for an answer.
 */
import type { Worker } from "node:worker_threads";
import { takeHelperWorker } from "./helper-bootstrap.js";

/** RAW_FIELDS numbers per path written by lstat jobs (fast-lstat.ts's column order). */
const LSTAT_FIELDS = 10;

// CommonJS, sent to the worker's bootstrap (helper-bootstrap.ts) as its first message; inline, so the
// bundled CLI needs no separate worker file.
// The lstat conversion must match fast-lstat.ts's putArray (a test compares the two walks).
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const hashes = new Map();
let crypto;
let buf;
const CHUNK = ${1 << 18};

function hashFile(job, path, size) {
  const h = job.hash;
  buf ??= Buffer.allocUnsafe(CHUNK);
  const fd = fs.openSync(path, "r");
  try {
    let done = 0;
    while (done < size) {
      if (cancelled(job)) return;
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - done), done);
      if (n === 0) throw new Error(path + ": read " + done + " of " + size + " bytes");
      h.update(buf.subarray(0, n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A cancelled job's remaining files are skipped (its digest is never asked for). */
function cancelled(job) {
  return job.cancel !== undefined && Atomics.load(job.cancel, 0) !== 0;
}

function lstatJob(m) {
  const b = process.binding("fs");
  const paths = m.paths.split("\\0");
  const nums = new Float64Array(m.nums);
  const ctl = new Int32Array(m.ctl);
  const chunks = Math.ceil(paths.length / m.chunk);
  for (;;) {
    const c = Atomics.add(ctl, 0, 1);
    if (c >= chunks) return;
    let state = 1;
    try {
      const end = Math.min(paths.length, (c + 1) * m.chunk);
      for (let i = c * m.chunk; i < end; i++) {
        const o = i * ${LSTAT_FIELDS};
        const a = b.lstat(m.prefix + paths[i], false, undefined, false);
        if (!a) { nums[o] = NaN; continue; }
        nums[o] = a[1]; nums[o + 1] = a[3]; nums[o + 2] = a[4]; nums[o + 3] = a[8];
        nums[o + 4] = a[12] * 1e3 + a[13] / 1e6; nums[o + 5] = a[14] * 1e3 + a[15] / 1e6;
        nums[o + 6] = a[7]; nums[o + 7] = a[0]; nums[o + 8] = a[5]; nums[o + 9] = a[2];
      }
    } catch {
      state = 2;
    }
    Atomics.store(ctl, 1 + c, state);
    Atomics.notify(ctl, 1 + c);
  }
}

parentPort.on("message", (m) => {
  if (m.t === "lstat") {
    lstatJob(m);
    // Loaded now, while idle, rather than when the first diffID hash is waiting for it.
    crypto ??= require("node:crypto");
    return;
  }
  let job = hashes.get(m.id);
  if (m.t === "hash-open") {
    crypto ??= require("node:crypto");
    hashes.set(m.id, { hash: crypto.createHash("sha256"), failed: undefined, cancel: m.cancel ? new Int32Array(m.cancel) : undefined });
    return;
  }
  if (!job) return;
  if (m.t === "hash-end") {
    hashes.delete(m.id);
    if (cancelled(job)) return parentPort.postMessage({ id: m.id, error: "cancelled" });
    return parentPort.postMessage(job.failed ? { id: m.id, error: job.failed } : { id: m.id, digest: "sha256:" + job.hash.digest("hex") });
  }
  if (job.failed || cancelled(job)) return;
  try {
    if (m.t === "hash-bytes") job.hash.update(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    else if (m.t === "hash-file") hashFile(job, m.path, m.size);
  } catch (err) {
    job.failed = String((err && err.message) || err);
  }
});
`;

export const HELPER_LSTAT_FIELDS = LSTAT_FIELDS;

interface Reply {
  id: number;
  digest?: string;
  error?: string;
}

export class HelperThread {
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;
  private readonly onMessage = (r: Reply): void => {
    const w = this.waiting.get(r.id);
    if (!w) return;
    this.waiting.delete(r.id);
    if (this.waiting.size === 0) this.worker.off("message", this.onMessage);
    w.resolve(r);
  };

  constructor(private readonly worker: Worker) {
    worker.unref();
    worker.on("error", (err) => this.fail(err));
    worker.on("exit", (code) => this.fail(new Error(`helper thread exited (code ${code})`)));
  }

  /** Whether the thread can still take work (it has not crashed or been stopped). */
  get alive(): boolean {
    return this.failure === undefined;
  }

  newJobId(): number {
    return this.nextId++;
  }

  /** Sends a message that needs no answer. */
  post(message: object, transfer?: readonly ArrayBuffer[]): void {
    if (this.failure) return;
    this.worker.postMessage(message, transfer as ArrayBuffer[] | undefined);
  }

  /** Sends a message and waits for the answer carrying the same `id`; the process stays alive meanwhile. */
  request(message: { id: number }): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.on("message", this.onMessage);
      this.waiting.set(message.id, { resolve, reject });
      this.worker.postMessage(message);
    });
  }

  /** Stops the thread; requests still waiting are rejected. */
  async stop(): Promise<void> {
    this.fail(new Error("helper thread stopped"));
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (current === this) current = undefined;
    this.worker.off("message", this.onMessage);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}

let current: HelperThread | undefined;

/** The process's helper thread, started on first use (and again after a crash). */
export function helperThread(): HelperThread {
  if (!current) {
    const worker = takeHelperWorker();
    worker.postMessage(WORKER_SOURCE);
    current = new HelperThread(worker);
  }
  return current;
}

/** The helper thread if one is running, without starting it. */
export function runningHelperThread(): HelperThread | undefined {
  return current;
}

/** Test hook: stops the helper thread (the next helperThread() call starts a new one). */
export async function stopHelperThreadForTests(): Promise<void> {
  await current?.stop();
}
