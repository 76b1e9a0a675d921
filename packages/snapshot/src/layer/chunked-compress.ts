/**
 * Compresses one gzip member off the main thread. zlib's async API runs deflate on libuv's threadpool,
 * which gives the parallelism of worker_threads without copying members between isolates or starting
 * workers; a small semaphore caps how many deflates run at once (`workers`).
 */
import { gzip, type ZlibOptions } from "node:zlib";
import { LayerError } from "./errors.js";

// Not promisify(gzip) at module load: reading gzip there loads node:zlib at every start-up.
function gzipAsync(data: Buffer, opts: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => gzip(data, opts, (err, out) => (err ? reject(err) : resolve(out))));
}

export class CompressPool {
  readonly #limit: number;
  #running = 0;
  readonly #waiting: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  #closed = false;

  constructor(limit: number, readonly level: number) {
    this.#limit = Math.max(1, Math.floor(limit));
  }

  /** gzip of `data` as one complete member (Node writes MTIME 0, OS 3: bytes depend on data and level only). */
  async compress(data: Buffer): Promise<Buffer> {
    // A released slot is handed straight to the next waiter, so the count never exceeds the limit.
    if (this.#closed) throw new LayerError("compression pool is closed");
    if (this.#running < this.#limit) this.#running++;
    else await new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
    try {
      return await gzipAsync(data, { level: this.level });
    } finally {
      const next = this.#waiting.shift();
      if (next) next.resolve();
      else this.#running--;
    }
  }

  /** Fails every waiting job (the write was abandoned); deflates already running finish on their own. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w.reject(new LayerError("compression pool is closed"));
  }
}
