// Writes a tar of named entries (small buffers or blob streams) to a file, streaming, in order.
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Header, Pack } from "tar-stream";

export interface ArchiveEntry {
  name: string;
  type?: "file" | "directory";
  size?: number;
  /** Either bytes or a stream factory (called once). */
  data?: Buffer;
  open?: () => NodeJS.ReadableStream;
}

const FIXED_MTIME = new Date(0);

export async function writeTarFile(dest: string, entries: Iterable<ArchiveEntry>, signal?: AbortSignal): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
  // Loaded here, not at start-up: only outputs write archives, and its module set-up costs a build ~4 ms.
  const { default: tar } = await import("tar-stream");
  const pack = tar.pack();
  const out = createWriteStream(tmp);
  const done = pipeline(pack, out, signal ? { signal } : {});
  try {
    for (const entry of entries) {
      signal?.throwIfAborted();
      if (entry.type === "directory") {
        await addEntry(pack, { name: entry.name, type: "directory", mode: 0o755, mtime: FIXED_MTIME });
      } else if (entry.data) {
        await addEntry(pack, { name: entry.name, size: entry.data.length, mode: 0o644, mtime: FIXED_MTIME }, entry.data);
      } else if (entry.open) {
        await addEntry(pack, { name: entry.name, size: entry.size ?? 0, mode: 0o644, mtime: FIXED_MTIME }, entry.open());
      }
    }
    pack.finalize();
    await done;
    await rename(tmp, dest);
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

function addEntry(pack: Pack, header: Partial<Header> & { name: string }, body?: Buffer | NodeJS.ReadableStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (body === undefined || Buffer.isBuffer(body)) {
      pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    pipeline(body, sink).catch(reject);
  });
}
