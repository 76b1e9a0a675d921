// Warm-rebuild benchmark for the "fast rebuilds" issue.
//   npx tsx packages/snapshot/bench/warm-bench.ts CONTEXT [--runs N] [--cli CMD]
// CONTEXT is made by warm-fixture.ts. Three measurements, each the median of N fresh processes:
//  1. the whole CLI: `node packages/cli/dist/main.js build --progress quiet -t app CONTEXT`
//     (or --cli "node path/to/entry.js"), with a private store warmed by one build first;
//  2. the context phases in a fresh process (cold JIT, as in the CLI): walk, stat cache load,
//     digest, the per-path map;
//  3. the same after one small file changed: the digest phase and how many files were read.
// Uses the compiled packages (run `npx tsc -b` first). Wall times on a busy machine vary a lot;
// the load average is printed alongside.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");

interface PhaseTimes {
  /** CPU time (user + system) of walk + cache load + digest + paths, less disturbed by a busy machine. */
  cpuMs: number;
  walkMs: number;
  cacheLoadMs: number;
  digestMs: number;
  pathsMs: number;
  reads: number;
  entries: number;
}

/** Child mode: one cold run of the context phases, printed as JSON. */
async function childPhases(context: string, statCacheFile: string): Promise<void> {
  const { BuildContext, StatCache } = (await import(pathToFileURL(path.join(here, "../dist/index.js")).href)) as typeof import("../src/index.js");
  let reads = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  // Loading the cache on its own first shows its cost; open() then gets it from the OS cache.
  StatCache.loadSync(statCacheFile);
  const t1 = performance.now();
  const ctx = await BuildContext.open(context, { dockerfile: path.join(context, "Dockerfile"), statCacheFile, onContentRead: () => reads++ });
  const t2 = performance.now();
  const d = await ctx.digestSources(["."]);
  const t3 = performance.now();
  void Object.keys(d.paths).length;
  const t4 = performance.now();
  const c = process.cpuUsage(c0);
  const out: PhaseTimes = { cpuMs: (c.user + c.system) / 1000, cacheLoadMs: t1 - t0, walkMs: t2 - t1, digestMs: t3 - t2, pathsMs: t4 - t3, reads, entries: ctx.entries().length };
  process.stdout.write(JSON.stringify(out));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
}

function runPhases(context: string, statCacheFile: string): PhaseTimes {
  const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", context, statCacheFile], { encoding: "utf8", cwd: repo });
  if (r.status !== 0) throw new Error(`phase child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as PhaseTimes;
}

function summarize(label: string, runs: PhaseTimes[]): void {
  const m = (k: keyof PhaseTimes) => median(runs.map((r) => r[k])).toFixed(1);
  console.log(`${label}: walk ${m("walkMs")} ms | stat cache load ${m("cacheLoadMs")} ms | digest ${m("digestMs")} ms | paths map ${m("pathsMs")} ms | cpu ${m("cpuMs")} ms | files read ${m("reads")} | entries ${runs[0]?.entries}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") return childPhases(args[1] as string, args[2] as string);
  const context = args.find((a) => !a.startsWith("--") && args[args.indexOf(a) - 1] !== "--runs" && args[args.indexOf(a) - 1] !== "--cli");
  if (!context) throw new Error("usage: warm-bench.ts CONTEXT [--runs N] [--cli CMD]");
  const runsAt = args.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 7;
  const cliAt = args.indexOf("--cli");
  const cli = (cliAt >= 0 ? (args[cliAt + 1] as string) : `node ${path.join(repo, "packages/cli/dist/main.js")}`).split(" ");
  const store = mkdtempSync(path.join(tmpdir(), "kiln-warm-bench-"));
  try {
    // 1. Whole CLI, warm store.
    // /usr/bin/time (when installed) adds the child's CPU time (user + system) to the wall time.
    const timeBin = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;
    const cpus: number[] = [];
    const build = () => {
      const argv = [...cli, "build", "--progress", "quiet", "--store", store, "-t", "app", context];
      const t = performance.now();
      const r = timeBin
        ? spawnSync(timeBin, ["-f", "%U %S", ...argv], { encoding: "utf8" })
        : spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8" });
      const wall = performance.now() - t;
      if (r.status !== 0) throw new Error(`kiln build failed: ${r.stderr}`);
      const times = timeBin ? r.stderr.trim().split("\n").at(-1)?.split(" ").map(Number) : undefined;
      if (times?.length === 2) cpus.push(((times[0] as number) + (times[1] as number)) * 1000);
      return wall;
    };
    build(); // cold: fills the store and the stat cache
    build(); // files hashed within the racy window are trusted from now on
    cpus.length = 0;
    const walls = Array.from({ length: runs }, build);
    console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    const cpu = cpus.length > 0 ? `, cpu median ${median(cpus).toFixed(0)} ms` : "";
    console.log(`kiln build, nothing changed: wall median ${median(walls).toFixed(0)} ms, min ${Math.min(...walls).toFixed(0)} ms${cpu} (n=${runs})`);

    // 2./3. Context phases against a stat cache of our own.
    const statCacheFile = path.join(store, "bench.statcache");
    runPhases(context, statCacheFile);
    runPhases(context, statCacheFile);
    summarize("phases, nothing changed", Array.from({ length: runs }, () => runPhases(context, statCacheFile)));
    const victim = path.join(context, "Dockerfile");
    const original = readFileSync(victim);
    const changed: PhaseTimes[] = [];
    try {
      for (let i = 0; i < runs; i++) {
        writeFileSync(victim, Buffer.concat([original, Buffer.from(`# ${i}\n`)]));
        changed.push(runPhases(context, statCacheFile));
      }
    } finally {
      writeFileSync(victim, original);
    }
    summarize("phases, one file changed", changed);
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
}

await main();
