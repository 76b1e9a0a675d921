/**
 * `pnpm bench`: kiln vs BuildKit (and Buildah) on the same Dockerfiles, interleaved, one table per
 * scenario printed and written to BENCHMARKS.md. See `pnpm bench --help`.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BuildahBuilder } from "./builders/buildah.js";
import { BuildKitBuilder } from "./builders/buildkit.js";
import { KilnBuilder } from "./builders/kiln.js";
import type { Builder, ToolName } from "./builders/types.js";
import { profileMarkdown, summariseProfile } from "./lib/cpuprofile.js";
import { BenchError } from "./lib/errors.js";
import { machineInfo } from "./lib/machine.js";
import { timed } from "./lib/measure.js";
import { renderReport } from "./lib/report.js";
import { pairedRatio } from "./lib/stats.js";
import { runScenario, type ScenarioResult } from "./lib/runner.js";
import { buildKiln, ensureBases, ensurePackages, serviceScope, useBenchServiceDirs } from "./lib/setup.js";
import { SCENARIOS } from "./scenarios/index.js";
import type { RunCounts, Scenario, ScenarioEnv } from "./scenarios/types.js";

const USAGE = `Usage: pnpm bench [options]

  --quick               2 counted runs + 1 warm-up per scenario (default 5 + 1)
  --runs N              counted runs per scenario and tool
  --warmups N           uncounted runs first
  --scenarios a,b       run only these (ids: ${SCENARIOS.map((s) => s.id).join(", ")})
  --tools a,b           kiln,buildkit,buildah (default all three; kiln and buildkit are always compared)
  --buildah-runs N      counted runs for Buildah (default 1, no warm-ups: vfs storage makes it slow)
  --buildah-all         let Buildah run node-warm, node-touch and big-layer too (skipped by default: on vfs
                        they take it minutes each)
  --profile ID|auto     afterwards, run kiln once under node --cpu-prof on scenario ID (auto: the one with
                        the highest kiln ÷ BuildKit paired ratio) and summarise it in the results
  --out FILE            results file (default BENCHMARKS.md at the repo root; "-" = do not write)
  --work-dir DIR        fixtures and stores (default $KILN_BENCH_DIR or /var/tmp/kiln-bench)
  --no-build            do not run tsc -b first
  --keep-services       leave the dockerd/registry this run started running
`;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function positiveInt(name: string, v: string | undefined, dflt: number, allowZero = false): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new BenchError(`--${name} must be an integer ≥ ${allowZero ? 0 : 1}, got "${v}"`);
  return n;
}

function caSecret(): { id: string; src: string }[] {
  const candidates = [process.env.NODE_EXTRA_CA_CERTS, "/etc/ssl/certs/ca-certificates.crt"];
  const src = candidates.find((f): f is string => !!f && existsSync(f));
  return src ? [{ id: "ca", src }] : [];
}

async function newestProfile(dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"));
  if (files.length === 0) throw new BenchError(`no .cpuprofile written in ${dir}`);
  const sized = await Promise.all(files.map(async (f) => ({ f, size: (await stat(path.join(dir, f))).size })));
  sized.sort((a, b) => b.size - a.size);
  return path.join(dir, sized[0]!.f);
}

/** One kiln build of the scenario under --cpu-prof, from the state the scenario's own runs start from. */
async function profileKiln(kiln: KilnBuilder, scenario: Scenario, env: ScenarioEnv): Promise<string> {
  const prepared = await scenario.prepare(env);
  await kiln.build(prepared.request); // brings the cache to "built once" for warm/edit scenarios
  await prepared.before?.(kiln, 0);
  const dir = path.join(env.workDir, "profiles", `${scenario.id}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const c = kiln.command(prepared.request);
  const run = await timed(c.cmd, ["--cpu-prof", "--cpu-prof-dir", dir, ...c.args], { env: c.env });
  const file = await newestProfile(dir);
  log(`profile of ${scenario.id} (${(run.ms / 1000).toFixed(2)} s): ${file}`);
  const summary = await summariseProfile(file);
  return profileMarkdown(`kiln CPU profile: ${scenario.title} (${(run.ms / 1000).toFixed(2)} s wall)`, summary);
}

/** The scenario where kiln trails BuildKit most (median of the paired ratios). */
function slowestRelative(results: readonly ScenarioResult[]): Scenario | undefined {
  let best: { s: Scenario; r: number } | undefined;
  for (const res of results) {
    const k = res.tools.find((t) => t.tool === "kiln");
    const b = res.tools.find((t) => t.tool === "buildkit");
    if (!k || !b) continue;
    const r = pairedRatio(k.samples.map((x) => x?.ms), b.samples.map((x) => x?.ms));
    if (Number.isFinite(r) && (!best || r > best.r)) best = { s: res.scenario, r };
  }
  return best?.s;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: "boolean" },
      runs: { type: "string" },
      warmups: { type: "string" },
      scenarios: { type: "string" },
      tools: { type: "string" },
      profile: { type: "string" },
      "buildah-runs": { type: "string" },
      "buildah-all": { type: "boolean" },
      out: { type: "string" },
      "work-dir": { type: "string" },
      "no-build": { type: "boolean" },
      "keep-services": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const quick = values.quick ?? false;
  const counts: RunCounts = {
    runs: positiveInt("runs", values.runs, quick ? 2 : 5),
    warmups: positiveInt("warmups", values.warmups, 1, true),
  };
  const ids = values.scenarios?.split(",").map((s) => s.trim()).filter(Boolean);
  const scenarios = ids ? ids.map((id) => SCENARIOS.find((s) => s.id === id) ?? (() => { throw new BenchError(`unknown scenario "${id}"`); })()) : [...SCENARIOS];
  const toolNames = (values.tools ?? "kiln,buildkit,buildah").split(",").map((s) => s.trim()) as ToolName[];
  for (const t of toolNames) if (!["kiln", "buildkit", "buildah"].includes(t)) throw new BenchError(`unknown tool "${t}"`);
  const profileScenario = values.profile && values.profile !== "auto" ? SCENARIOS.find((s) => s.id === values.profile) : undefined;
  if (values.profile && values.profile !== "auto" && !profileScenario) throw new BenchError(`--profile: unknown scenario "${values.profile}"`);
  const workDir = path.resolve(values["work-dir"] ?? process.env.KILN_BENCH_DIR ?? "/var/tmp/kiln-bench");
  await mkdir(workDir, { recursive: true });

  const loadAtStart = os.loadavg()[0]!;
  useBenchServiceDirs();
  await ensurePackages(toolNames.includes("buildah"), log);
  if (!values["no-build"]) await buildKiln(repoRoot, log);
  const stopOurServices = await serviceScope();
  try {
    const bases = await ensureBases(log);
    const kiln = new KilnBuilder(repoRoot, workDir);
    const all: Record<ToolName, Builder> = {
      kiln,
      buildkit: new BuildKitBuilder(),
      buildah: new BuildahBuilder(workDir, {
        maxRuns: positiveInt("buildah-runs", values["buildah-runs"], 1),
        // On vfs even an all-cached rebuild of the Node app takes Buildah ~3 minutes (it copies the
        // rootfs per cached layer): those and the 2 GiB build would double the bench's duration.
        skips: values["buildah-all"] ? [] : ["node-warm", "node-touch", "big-layer"],
      }),
    };
    const builders = toolNames.map((t) => all[t]);
    const baseList = [bases.busybox, bases.node];
    for (const b of builders) {
      log(`preparing ${b.name} (base images into its store)…`);
      await b.prepare(baseList);
    }
    // Versions as of the start: what the figures were measured with.
    const versions = await Promise.all(builders.map((b) => b.version()));
    const env: ScenarioEnv = { workDir, bases, secrets: caSecret(), quick };
    const results: ScenarioResult[] = [];
    for (const s of scenarios) {
      log(`scenario ${s.id}: ${s.title}`);
      const r = await runScenario(s, builders, env, counts, log);
      log(`  (${r.wallSeconds.toFixed(0)} s)`);
      results.push(r);
    }
    const extra: string[] = [];
    const toProfile = values.profile === "auto" ? slowestRelative(results) : profileScenario;
    if (toProfile) extra.push("## Profile", "", await profileKiln(kiln, toProfile, env), "");
    const invocation = `pnpm bench ${process.argv.slice(2).join(" ")}`.trim();
    const report = renderReport(results, await machineInfo(workDir, versions, loadAtStart), invocation, extra);
    process.stdout.write(`${report}\n`);
    if (values.out !== "-") {
      const out = path.resolve(repoRoot, values.out ?? "BENCHMARKS.md");
      await writeFile(out, `${report}\n`);
      log(`wrote ${out}`);
    }
    await writeFile(path.join(workDir, `results-${Date.now()}.json`), JSON.stringify(results.map((r) => ({ id: r.scenario.id, counts: r.counts, tools: r.tools })), null, 2));
    return results.some((r) => r.tools.some((t) => t.error !== undefined)) ? 1 : 0;
  } finally {
    if (!values["keep-services"]) await stopOurServices();
    await rm(path.join(workDir, "kiln-unpack"), { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? (err instanceof BenchError ? `bench: ${err.message}` : (err.stack ?? err.message)) : String(err));
    process.exit(2);
  },
);
