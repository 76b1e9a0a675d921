/** Markdown tables for BENCHMARKS.md and the terminal (the same text in both places). */
import type { ScenarioResult, ToolResult } from "./runner.js";
import { median, min, pairedRatio } from "./stats.js";
import type { MachineInfo } from "./machine.js";

const secs = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : "–");
const mib = (b: number): string => (Number.isFinite(b) ? (b / 1048576).toFixed(0) : "–");
const ratio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : "–");

function times(t: ToolResult): number[] {
  return t.samples.flatMap((s) => (s ? [s.ms] : []));
}

function msOrUndef(t: ToolResult): (number | undefined)[] {
  return t.samples.map((s) => s?.ms);
}

export function scenarioTable(r: ScenarioResult): string {
  const ref = r.tools.find((t) => t.tool === "buildkit");
  const refMedian = ref ? median(times(ref)) : Number.NaN;
  const lines: string[] = [`### ${r.scenario.title}`, "", r.scenario.what];
  if (r.facts) lines.push("", `${r.facts}.`);
  lines.push("", `${r.counts.runs} counted run(s) per tool after ${r.counts.warmups} warm-up(s).`, "");
  const memCols = r.scenario.memory ? " peak RSS, median (MiB) | dockerd growth (MiB) |" : "";
  lines.push(`| tool | runs ok | min (s) | median (s) | median ÷ BuildKit | paired ratio ÷ BuildKit |${memCols}`);
  lines.push(`|---|---|---|---|---|---|${r.scenario.memory ? "---|---|" : ""}`);
  for (const t of r.tools) {
    const ts = times(t);
    if (t.samples.length === 0 && t.error === undefined) {
      lines.push(`| ${t.tool} | skipped | – | – | – | – |${r.scenario.memory ? " – | – |" : ""}`);
      continue;
    }
    const ok = `${ts.length}/${t.samples.length}`;
    const isRef = t.tool === "buildkit";
    const medRatio = isRef ? "1.00×" : ratio(median(ts) / refMedian);
    const paired = isRef ? "1.00×" : ref ? ratio(pairedRatio(msOrUndef(t), msOrUndef(ref))) : "–";
    let mem = "";
    if (r.scenario.memory) {
      const rss = median(t.samples.flatMap((s) => (s?.peakTreeRss !== undefined ? [s.peakTreeRss] : [])));
      const daemon = t.samples.flatMap((s) => (s?.daemonRssDelta !== undefined ? [s.daemonRssDelta] : []));
      mem = ` ${mib(rss)} | ${daemon.length > 0 ? mib(median(daemon)) : "n/a"} |`;
    }
    lines.push(`| ${t.tool} | ${ok} | ${secs(min(ts))} | ${secs(median(ts))} | ${medRatio} | ${paired} |${mem}`);
  }
  const failed = r.tools.filter((t) => t.error !== undefined);
  for (const t of failed) {
    const first = t.error!.split("\n").filter((l) => /error|fail/i.test(l)).slice(-1)[0] ?? t.error!.split("\n")[0];
    lines.push("", `**${t.tool} failed:** \`${(first ?? "").trim().slice(0, 400).replace(/`/g, "'")}\``);
  }
  return lines.join("\n");
}

/** Issue #9's targets, each read off one scenario of this run. */
const TARGETS: readonly { scenario: string; what: string; ratio?: number; rssMiB?: number }[] = [
  { scenario: "large-warm", what: "warm rebuild, nothing changed", ratio: 0.25 },
  { scenario: "large-touch", what: "one source file changed under `COPY . .`", ratio: 0.1 },
  { scenario: "large-cold", what: "cold build", ratio: 0.5 },
  { scenario: "run20", what: "20 trivial RUN steps", ratio: 0.5 },
  { scenario: "big-layer", what: "peak RSS building a 2 GB layer", rssMiB: 256 },
];

/** The targets table: the measured figure next to its target, for the scenarios this run covered. */
export function targetsSection(results: readonly ScenarioResult[]): string {
  const rows: string[] = [];
  for (const t of TARGETS) {
    const r = results.find((x) => x.scenario.id === t.scenario);
    const kiln = r?.tools.find((x) => x.tool === "kiln");
    const ref = r?.tools.find((x) => x.tool === "buildkit");
    if (!r || !kiln || !ref) continue;
    let measured: number;
    let shown: string;
    let target: string;
    let met: boolean;
    if (t.ratio !== undefined) {
      measured = pairedRatio(msOrUndef(kiln), msOrUndef(ref));
      shown = `${ratio(measured)} (median ${secs(median(times(kiln)))} s vs ${secs(median(times(ref)))} s)`;
      target = `≤ ${t.ratio.toFixed(2)}×`;
      met = measured <= t.ratio;
    } else {
      measured = median(kiln.samples.flatMap((s) => (s?.peakTreeRss !== undefined ? [s.peakTreeRss] : [])));
      shown = `${mib(measured)} MiB`;
      target = `≤ ${t.rssMiB} MB`;
      met = measured <= t.rssMiB! * 1e6;
    }
    rows.push(`| ${t.what} | \`${t.scenario}\` | ${target} | ${shown} | ${Number.isFinite(measured) ? (met ? "met" : "**not met**") : "–"} |`);
  }
  if (rows.length === 0) return "";
  return [
    "## Targets (issue #9)",
    "",
    "kiln ÷ BuildKit paired ratio (median of per-pair ratios) from this run's tables below.",
    "",
    "| target | scenario | target | kiln, this run | |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

export function machineSection(m: MachineInfo): string {
  return [
    "## Machine",
    "",
    `- date: ${m.date}`,
    `- CPU: ${m.nproc} × ${m.cpuModel}`,
    `- RAM: ${m.ramGiB.toFixed(1)} GiB`,
    `- OS / kernel: ${m.os} / Linux ${m.kernel}`,
    `- disk for stores: ${m.filesystem}`,
    `- load average (1 min): ${m.load}`,
    ...m.tools.map((t) => `- ${t}`),
  ].join("\n");
}

export function renderReport(results: readonly ScenarioResult[], machine: MachineInfo, invocation: string, extra: readonly string[] = []): string {
  return [
    "# kiln benchmarks",
    "",
    `Generated by \`${invocation}\` (bench/run.ts). kiln, BuildKit (dockerd's builtin) and Buildah build the same`,
    "Dockerfiles from the same base images (served by a local registry), each into its own local store (kiln: its store +",
    "tag; BuildKit: dockerd's image store; Buildah: its vfs storage), so no export step is timed. Time is the",
    "wall-clock of the whole CLI process. Tools run interleaved (A B A B); the paired ratio is the median of",
    "kiln_i ÷ BuildKit_i over the counted runs, which cancels drift; \"median ÷ BuildKit\" divides the medians.",
    "Below 1× kiln is faster.",
    "",
    "Reading the figures: kiln, like dockerd's image store (overlay2), keeps the layers it builds uncompressed and",
    "compresses them only when an output or a push needs them (neither is timed here). Buildah uses the vfs storage driver (portable, as root without fuse), which copies the whole root",
    "filesystem for every layer: it is a reference point, run once per scenario by default, not a tuned Buildah.",
    "Absolute times move with the machine's load; the paired ratios are the figures to compare across runs.",
    "kiln runs with NODE_EXTRA_CA_CERTS removed from its environment: Node parses that CA bundle at every start",
    "(~40 ms) and nothing here needs it (the registry is plain HTTP on 127.0.0.1; the docker CLI never reads it).",
    "",
    machineSection(machine),
    "",
    ...(targetsSection(results) ? [targetsSection(results), ""] : []),
    "## Results",
    "",
    ...results.flatMap((r) => [scenarioTable(r), ""]),
    ...extra,
  ].join("\n");
}
