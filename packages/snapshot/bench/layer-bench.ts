/**
 * Writes a generated ~2 GB layer (512 files of 4 MiB, content generated on the fly, never on disk) as a
 * gzip blob into /dev/null at gzip levels 1 and 6, reporting throughput (uncompressed MB/s) and peak RSS.
 * Run: npx tsx packages/snapshot/bench/layer-bench.ts [totalMiB]
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { writeLayerBlob, type LayerEntry } from "../src/index.js";

const totalMiB = Number(process.argv[2] ?? 2048);
const FILE_MIB = 4;
const CHUNK = 64 * 1024;

// Semi-compressible content (~2-3x with gzip): random hex text interleaved with runs of a repeated line.
const pattern = (() => {
  const parts: Buffer[] = [];
  let len = 0;
  while (len < 1 << 20) {
    const p = len % 3 === 0 ? Buffer.from(randomBytes(512).toString("hex")) : Buffer.from("the quick brown fox jumps over the lazy dog\n".repeat(20));
    parts.push(p);
    len += p.length;
  }
  return Buffer.concat(parts).subarray(0, 1 << 20);
})();

function content(size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const n = Math.min(CHUNK, size - sent);
      const off = sent % pattern.length;
      this.push(off + n <= pattern.length ? pattern.subarray(off, off + n) : pattern.subarray(0, n));
      sent += n;
    },
  });
}

function* entries(): Generator<LayerEntry> {
  const files = Math.max(1, Math.floor(totalMiB / FILE_MIB));
  yield { path: "data", type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 };
  for (let i = 0; i < files; i++) {
    const size = FILE_MIB << 20;
    yield { path: `data/f${String(i).padStart(5, "0")}`, type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size, open: () => content(size) };
  }
}

async function run(level: number): Promise<void> {
  global.gc?.();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const start = process.hrtime.bigint();
  const info = await writeLayerBlob(entries(), createWriteStream("/dev/null"), { level });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const mb = info.uncompressedSize / 1e6;
  console.log(
    `gzip -${level}: ${mb.toFixed(0)} MB tar -> ${(info.size / 1e6).toFixed(0)} MB blob in ${secs.toFixed(1)} s = ` +
      `${(mb / secs).toFixed(1)} MB/s; peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB; diffID ${info.diffID.slice(0, 19)}…`,
  );
}

console.log(`baseline RSS before writing: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
for (const level of [1, 6]) await run(level);
