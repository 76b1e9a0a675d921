// Context walk + digest benchmark: 20,000 files / ~200 MB, cold (no stat cache) vs warm
// (stat cache hit, nothing re-read). Run: npx tsx packages/snapshot/bench/context-bench.ts
import { randomBytes } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BuildContext } from "../src/index.js";

const FILES = Number(process.env.FILES ?? 20_000);
const TOTAL_BYTES = Number(process.env.TOTAL_MB ?? 200) * 1024 * 1024;
const PER_DIR = 100;

async function createTree(root: string): Promise<number> {
  // Mostly small files plus a few large ones, like a source tree with some assets.
  const big = Math.max(1, Math.floor(FILES / 1000));
  const bigSize = Math.floor((TOTAL_BYTES * 0.5) / big);
  const smallSize = Math.floor((TOTAL_BYTES * 0.5) / (FILES - big));
  const pool = randomBytes(bigSize + 4096);
  let bytes = 0;
  let next = 0;
  const write = async (i: number): Promise<void> => {
    const d = join(root, `d${Math.floor(i / PER_DIR) % 20}`, `s${Math.floor(i / PER_DIR)}`);
    if (i % PER_DIR === 0) await mkdir(d, { recursive: true });
    const size = i % 1000 === 0 ? bigSize : smallSize + ((i * 37) % 512) - 256;
    const off = i % 4096;
    bytes += size;
    await writeFile(join(d, `f${i}.dat`), pool.subarray(off, off + size));
  };
  // Directories first (serially per dir), then files with some parallelism.
  for (let i = 0; i < FILES; i += PER_DIR) await write(i);
  const workers = Array.from({ length: 16 }, async () => {
    for (;;) {
      const i = next++;
      if (i >= FILES) return;
      if (i % PER_DIR !== 0) await write(i);
    }
  });
  await Promise.all(workers);
  await writeFile(join(root, ".dockerignore"), "**/*.tmp\nd19/s199\n!d19/s199/f19999.dat\n");
  return bytes;
}

/** Reference floor: the bare readdir + lstat calls any walker has to make. */
async function rawWalk(dir: string): Promise<number> {
  const dirents = await readdir(dir, { withFileTypes: true });
  const counts = await Promise.all(
    dirents.map(async (d) => {
      const p = join(dir, d.name);
      await lstat(p);
      return d.isDirectory() ? 1 + (await rawWalk(p)) : 1;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

const root = await mkdtemp(join(tmpdir(), "kiln-ctx-bench-"));
const statCacheFile = join(root, "..", `${root.split("/").pop()}.statcache`);
try {
  const [bytes, tCreate] = await time(() => createTree(root));
  console.log(`created ${FILES} files, ${(bytes / 1048576).toFixed(1)} MB in ${tCreate.toFixed(0)} ms`);
  // Let the tree age past the racy window, as a real checkout would be.
  await sleep(1100);

  const [rawCount, tRaw] = await time(() => rawWalk(root));
  console.log(`raw readdir+lstat floor: ${tRaw.toFixed(0)} ms (${rawCount} entries)`);

  let reads = 0;
  const opts = {
    statCacheFile,
    onContentRead: () => void reads++,
    ...(process.env.HASH_CONCURRENCY ? { hashConcurrency: Number(process.env.HASH_CONCURRENCY) } : {}),
    ...(process.env.WALK_CONCURRENCY ? { walkConcurrency: Number(process.env.WALK_CONCURRENCY) } : {}),
  };
  const [ctxCold, tWalkCold] = await time(() => BuildContext.open(root, opts));
  const [cold, tDigestCold] = await time(() => ctxCold.digestSources(["."]));
  console.log(
    `cold: walk ${tWalkCold.toFixed(0)} ms (${ctxCold.entries().length} entries) + digest ${tDigestCold.toFixed(0)} ms = ${(tWalkCold + tDigestCold).toFixed(0)} ms, ${reads} files read`,
  );

  reads = 0;
  const [ctxWarm, tWalkWarm] = await time(() => BuildContext.open(root, opts));
  const [warm, tDigestWarm] = await time(() => ctxWarm.digestSources(["."]));
  console.log(
    `warm: walk ${tWalkWarm.toFixed(0)} ms + digest ${tDigestWarm.toFixed(0)} ms = ${(tWalkWarm + tDigestWarm).toFixed(0)} ms, ${reads} files read`,
  );
  if (warm.digest !== cold.digest) throw new Error("warm digest differs from cold digest");
  console.log(`digest ${cold.digest}`);
} finally {
  await rm(root, { recursive: true, force: true });
  await rm(statCacheFile, { force: true });
}
