// Generates a build context shaped like the real one behind the "fast rebuilds" issue: 13,353 files in
// a few hundred directories, ~170 MB, sizes skewed (many small sources, a few big assets), plus a
// `FROM scratch` / `COPY . /app` / `CMD` Dockerfile. Deterministic, so runs are comparable.
// Run: npx tsx packages/snapshot/bench/warm-fixture.ts DIR   (DIR must not exist or be empty)
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const FIXTURE_FILES = 13_353;
const TARGET_BYTES = 170 * 1024 * 1024;
const DIRS = 320;

/** A small xorshift PRNG: same tree on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

export interface FixtureStats {
  files: number;
  dirs: number;
  bytes: number;
}

/** Writes the context into `root`; returns what it wrote. */
export async function createWarmFixture(root: string, files = FIXTURE_FILES): Promise<FixtureStats> {
  const rand = rng(42);
  await mkdir(root, { recursive: true });
  if ((await readdir(root)).length > 0) throw new Error(`${root} is not empty`);
  // Directory tree: a few top-level folders, nested 1-4 deep.
  const dirs: string[] = [];
  const tops = ["src", "lib", "test", "docs", "assets", "packages", "vendor", "scripts"];
  for (let i = 0; i < DIRS; i++) {
    const top = tops[i % tops.length] as string;
    const depth = 1 + Math.floor(rand() * 4);
    const parts = [top];
    for (let d = 1; d < depth; d++) parts.push(`m${Math.floor(rand() * 12)}`);
    parts.push(`d${i}`);
    dirs.push(parts.join("/"));
  }
  for (const d of dirs) await mkdir(join(root, d), { recursive: true });

  // Sizes: 97.5% small (log-uniform 100 B..16 KiB), the rest big assets that take the remaining bytes.
  const sizes: number[] = [];
  let smallBytes = 0;
  const bigCount = Math.max(1, Math.round(files * 0.025));
  for (let i = 0; i < files - bigCount; i++) {
    const s = Math.round(100 * Math.pow(164, rand()));
    sizes.push(s);
    smallBytes += s;
  }
  const bigEach = Math.max(16 * 1024, Math.floor((TARGET_BYTES - smallBytes) / bigCount));
  for (let i = 0; i < bigCount; i++) sizes.push(Math.round(bigEach * (0.25 + rand() * 1.5)));
  const pool = Buffer.alloc(Math.max(...sizes) + 65_536);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(rand() * 256);

  const assetDirs = dirs.filter((d) => d.startsWith("assets"));
  const fileDirs = sizes.map((_, i) => (i >= files - bigCount ? (assetDirs[i % assetDirs.length] as string) : (dirs[Math.floor(rand() * DIRS)] as string)));
  const exts = [".ts", ".js", ".json", ".md", ".css", ".html"];
  let bytes = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= files) return;
      const size = sizes[i] as number;
      const big = i >= files - bigCount;
      const dir = fileDirs[i] as string;
      const name = big ? `asset${i}.bin` : `f${i}${exts[i % exts.length]}`;
      const off = (i * 7919) % 65_536;
      await writeFile(join(root, dir, name), pool.subarray(off, off + size));
      bytes += size;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await writeFile(join(root, "Dockerfile"), 'FROM scratch\nCOPY . /app\nCMD ["/app/bin"]\n');
  await writeFile(join(root, ".dockerignore"), "**/*.log\n.git\nnode_modules\n**/.cache\n");
  return { files: files + 2, dirs: dirs.length, bytes };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: warm-fixture.ts DIR");
    process.exit(2);
  }
  const s = await createWarmFixture(dir);
  console.log(`${dir}: ${s.files} files, ${s.dirs} leaf dirs, ${(s.bytes / 1048576).toFixed(1)} MB`);
}
