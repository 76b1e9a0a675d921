// The stat cache is only an accelerator: a damaged cache file (truncated, bytes flipped, another
// format's bytes) must never fail a build nor change a digest — at worst files are hashed again.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildContext } from "@kiln/snapshot";

const RACY_MS = 20;
let dir: string;
let cacheDir: string;
let good: Buffer;
let reference: { digest: string; paths: Record<string, string> };

async function digestWith(cacheFile: string | undefined): Promise<{ digest: string; paths: Record<string, string>; reads: number }> {
  let reads = 0;
  const ctx = await BuildContext.open(dir, { ...(cacheFile ? { statCacheFile: cacheFile } : {}), racyWindowMs: RACY_MS, onContentRead: () => reads++ });
  const d = await ctx.digestSources(["."]);
  return { digest: d.digest, paths: { ...d.paths }, reads };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-statcache-damage-"));
  cacheDir = await mkdtemp(join(tmpdir(), "kiln-statcache-damage-cache-"));
  for (let d = 0; d < 5; d++) {
    await mkdir(join(dir, `d${d}`));
    for (let f = 0; f < 40; f++) await writeFile(join(dir, `d${d}`, `f${f}.txt`), `dir ${d} file ${f}\n`.repeat(f + 1));
  }
  await sleep(RACY_MS + 30);
  reference = await digestWith(undefined);
  const file = join(cacheDir, "good.statcache");
  const first = await digestWith(file);
  expect(first.digest).toBe(reference.digest);
  good = await readFile(file);
  // The cache is really used when intact: nothing is read again.
  const again = await digestWith(file);
  expect(again.reads).toBe(0);
  expect(again.digest).toBe(reference.digest);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
});

describe("damaged stat cache files", () => {
  it("truncated anywhere: same digests and paths as without a cache", async () => {
    const cuts = [0, 1, 4, 8, 16, 33, Math.floor(good.length / 3), Math.floor(good.length / 2), good.length - 9, good.length - 1];
    for (const cut of cuts) {
      const file = join(cacheDir, `cut-${cut}.statcache`);
      await writeFile(file, good.subarray(0, cut));
      const r = await digestWith(file);
      expect(r.digest, `cut at ${cut}`).toBe(reference.digest);
      expect(r.paths).toEqual(reference.paths);
    }
  });

  it("bytes flipped anywhere: same digests and paths as without a cache", async () => {
    const step = Math.max(1, Math.floor(good.length / 60));
    for (let at = 0; at < good.length; at += step) {
      const damaged = Buffer.from(good);
      damaged[at] = (damaged[at] as number) ^ 0xff;
      const file = join(cacheDir, `flip-${at}.statcache`);
      await writeFile(file, damaged);
      const r = await digestWith(file);
      expect(r.digest, `byte ${at} flipped`).toBe(reference.digest);
      expect(r.paths).toEqual(reference.paths);
    }
  });

  it("a file of another kind (JSON, random bytes) is ignored", async () => {
    for (const [name, bytes] of [
      ["json", Buffer.from('{"format":"kiln-statcache 4","rows":[1,2,3]}')],
      ["random", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff))],
    ] as const) {
      const file = join(cacheDir, `${name}.statcache`);
      await writeFile(file, bytes);
      const r = await digestWith(file);
      expect(r.digest, name).toBe(reference.digest);
      expect(r.paths).toEqual(reference.paths);
    }
  });
});
