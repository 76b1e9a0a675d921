/**
 * Chunked layer writing on a generated source tree on disk (default 13,353 files, ~180 MB, sizes and
 * compressibility like a JS project: mostly small text files, a few MB-sized bundles):
 *   - writeLayerBlob (single gzip member, content via createReadStream as the engine does today);
 *   - writeChunkedLayerBlob cold with 1 and 2 workers (content via sourcePath), and cold via open();
 *   - writeChunkedLayerBlob after one changed file, with the cold blob as `previous`.
 * Blobs go to files under the bench directory (page cache, like the blob store's ingest).
 * Each figure is the best of BENCH_RUNS (default 2) runs.
 * Run: npx tsx packages/snapshot/bench/chunked-bench.ts [files] [dir]
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  writeChunkedLayerBlob,
  writeLayerBlob,
  type ChunkedLayerEntry,
  type ChunkedLayerInfo,
  type LayerInfo,
  type PreviousChunkedLayer,
} from "../src/index.js";

const FILES = Number(process.argv[2] ?? 13_353);
const ROOT = process.argv[3] ?? "/tmp/kiln-chunked-bench";
const CTX = join(ROOT, "ctx");
const T = Date.UTC(2024, 0, 1);

// Text-like content: words drawn from a vocabulary plus numbers (gzip -6 gets ~3-4x, like source code).
const vocab = Array.from({ length: 8192 }, (_, i) => createHash("sha256").update(String(i)).digest("base64").slice(0, 2 + (i % 11)));
function content(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761 + 1;
  let pos = 0;
  while (pos < size) {
    x = (x * 1103515245 + 12345) % 2147483648;
    pos += out.write(`${vocab[x % 8192]}${x % 11 === 0 ? `${x % 977}\n` : " "}`, pos);
  }
  return out;
}

function sizeOf(i: number): number {
  if (i % 1000 === 7) return 1_200_000 + (i % 5) * 100_000; // bundles
  return 300 + ((i * 7919) % 24_000);
}

function generate(): { entries: () => ChunkedLayerEntry[]; bytes: number; paths: string[] } {
  rmSync(ROOT, { recursive: true, force: true });
  const dirs = new Set<string>();
  const paths: string[] = [];
  let bytes = 0;
  for (let i = 0; i < FILES; i++) {
    const rel = `pkg${i % 41}/src/mod${i % 173}/file${i}.js`;
    const d = rel.slice(0, rel.lastIndexOf("/"));
    if (!dirs.has(d)) {
      mkdirSync(join(CTX, d), { recursive: true });
      for (let p = d; p !== ""; p = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "") dirs.add(p);
    }
    const data = content(i, sizeOf(i));
    writeFileSync(join(CTX, rel), data);
    bytes += data.length;
    paths.push(rel);
  }
  const entries = (): ChunkedLayerEntry[] => [
    ...[...dirs].map((d): ChunkedLayerEntry => ({ path: d, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: T })),
    ...paths.map((rel, i): ChunkedLayerEntry => {
      const abs = join(CTX, rel);
      const size = sizeOfFile(rel, i);
      return { path: rel, type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: T, size, sourcePath: abs, open: () => createReadStream(abs) };
    }),
  ];
  return { entries, bytes, paths };
}

const overrides = new Map<string, number>();
const sizeOfFile = (rel: string, i: number): number => overrides.get(rel) ?? sizeOf(i);

/** Entries as the engine builds them today: content only through open(). */
const viaOpen = (es: ChunkedLayerEntry[]): ChunkedLayerEntry[] => es.map(({ sourcePath: _s, ...e }) => e);

const RUNS = Number(process.env.BENCH_RUNS ?? 2);

/** Best of RUNS (wall and CPU separately): the build VM is shared, so the minimum is the honest figure. */
async function timed<R>(label: string, mb: number, fn: () => Promise<R>): Promise<R> {
  let s = Number.POSITIVE_INFINITY;
  let cpu = Number.POSITIVE_INFINITY;
  let r: R | undefined;
  for (let i = 0; i < RUNS; i++) {
    global.gc?.();
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    r = await fn();
    s = Math.min(s, (performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    // CPU seconds of this process (main thread + libuv threadpool): steadier than wall time on a busy host.
    cpu = Math.min(cpu, (c.user + c.system) / 1e6);
  }
  console.log(`${label.padEnd(46)} ${s.toFixed(2).padStart(6)} s  ${(mb / s).toFixed(0).padStart(5)} MB/s  cpu ${cpu.toFixed(2)} s`);
  return r!;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const { entries, bytes, paths } = generate();
  const mb = bytes / 1e6;
  console.log(`generated ${FILES} files, ${mb.toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s under ${CTX}`);
  const out = (name: string): string => join(ROOT, name);

  // The floor for any writer: read every file and sha256 it once (the diffID needs at least this).
  await timed("floor: readFileSync + sha256 of all files", mb, async () => {
    const h = createHash("sha256");
    for (const e of entries()) if (e.sourcePath) h.update(readFileSync(e.sourcePath));
    return h.digest("hex");
  });

  const single = await timed("writeLayerBlob (1 member, open())", mb, () =>
    writeLayerBlob(viaOpen(entries()), createWriteStream(out("single.tgz"))),
  );
  const c1 = await timed("chunked cold, 1 worker (sourcePath)", mb, () =>
    writeChunkedLayerBlob(entries(), createWriteStream(out("c1.tgz")), { workers: 1 }),
  );
  const c2 = await timed("chunked cold, 2 workers (sourcePath)", mb, () =>
    writeChunkedLayerBlob(entries(), createWriteStream(out("c2.tgz")), { workers: 2 }),
  );
  await timed("chunked cold, 2 workers (open())", mb, () =>
    writeChunkedLayerBlob(viaOpen(entries()), createWriteStream(out("c2open.tgz")), { workers: 2 }),
  );
  if (c1.digest !== c2.digest || c1.diffID !== single.diffID) throw new Error("bench: outputs disagree");

  // One source file changes (content and size).
  const victim = paths[Math.floor(paths.length / 2)]!;
  const changed = Buffer.concat([content(424242, 5000), Buffer.from("// edited\n")]);
  writeFileSync(join(CTX, victim), changed);
  overrides.set(victim, changed.length);
  const previous: PreviousChunkedLayer = {
    index: c2.index,
    openBlobRange: (start, end) => createReadStream(out("c2.tgz"), { start, end: end - 1 }),
  };
  const inc: ChunkedLayerInfo = await timed("chunked incremental, 1 file changed", mb, () =>
    writeChunkedLayerBlob(entries(), createWriteStream(out("inc.tgz")), { workers: 2, previous }),
  );
  await timed("chunked incremental, 1 file changed (open())", mb, () =>
    writeChunkedLayerBlob(viaOpen(entries()), createWriteStream(out("inc-open.tgz")), { workers: 2, previous }),
  );
  const scratch = await timed("chunked cold after the change (check)", mb, () =>
    writeChunkedLayerBlob(entries(), createWriteStream(out("scratch.tgz")), { workers: 2 }),
  );
  if (scratch.digest !== inc.digest) throw new Error("bench: incremental blob differs from a from-scratch write");

  const ratio = (i: LayerInfo): string => `${(i.size / 1e6).toFixed(1)} MB (${((100 * i.size) / i.uncompressedSize).toFixed(1)}%)`;
  console.log(`blob sizes: single ${ratio(single)}, chunked ${ratio(c2)}; members ${c2.stats.members}`);
  console.log(`incremental: ${inc.stats.compressedMembers} member(s) deflated, ${inc.stats.reusedMembers} copied; peak buffered ${(c2.stats.peakBufferedBytes / 1e6).toFixed(1)} MB`);
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  rmSync(ROOT, { recursive: true, force: true });
}

await main();
