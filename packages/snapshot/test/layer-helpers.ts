import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import type { LayerEntry } from "../src/index.js";

export const T0 = Date.UTC(2024, 0, 2, 3, 4, 5);

export function file(path: string, content: string | Buffer, extra: Partial<LayerEntry> = {}): LayerEntry {
  const buf = typeof content === "string" ? Buffer.from(content) : content;
  return { path, type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: T0, size: buf.length, open: () => Readable.from([buf]), ...extra };
}

export function dir(path: string, extra: Partial<LayerEntry> = {}): LayerEntry {
  return { path, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: T0, ...extra };
}

export function symlink(path: string, target: string, extra: Partial<LayerEntry> = {}): LayerEntry {
  return { path, type: "symlink", mode: 0o777, uid: 0, gid: 0, mtimeMs: T0, linkname: target, ...extra };
}

export async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

export function sha256(buf: Buffer): string {
  return `sha256:${createHash("sha256").update(buf).digest("hex")}`;
}

/** A Writable collecting everything written to it. */
export function memorySink(): Writable & { data: () => Buffer } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  }) as Writable & { data: () => Buffer };
  w.data = () => Buffer.concat(chunks);
  return w;
}
