/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per module, so "where does
 * kiln's time go" reads as hashing / tar / gzip / fs / waiting on children.
 */
import { readFile } from "node:fs/promises";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  functions: SelfTime[];
  modules: SelfTime[];
}

function shortUrl(url: string): string {
  if (!url) return "";
  const pkg = /packages\/([^/]+)\/(?:dist|src)\/(.*)$/.exec(url);
  if (pkg) return `${pkg[1]}/${pkg[2]}`;
  const nm = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm:${nm[1]}`;
  return url.replace(/^file:\/\//, "");
}

function rank(map: Map<string, number>, total: number, top: number): SelfTime[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, share: us / total }));
}

export async function summariseProfile(file: string, top = 20): Promise<ProfileSummary> {
  const prof = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  let total = 0;
  // timeDeltas[i + 1] is the time until the next sample: the time sample i stands for.
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]!);
    const dt = prof.timeDeltas[i + 1] ?? 0;
    if (!node || dt <= 0) continue;
    total += dt;
    const f = node.callFrame;
    const where = shortUrl(f.url);
    const name = where ? `${f.functionName || "(anonymous)"} ${where}:${f.lineNumber + 1}` : f.functionName;
    fn.set(name, (fn.get(name) ?? 0) + dt);
    const m = where ? where.replace(/:\d+$/, "") : f.functionName;
    mod.set(m, (mod.get(m) ?? 0) + dt);
  }
  return { totalMs: total / 1000, functions: rank(fn, total, top), modules: rank(mod, total, top) };
}

export function profileMarkdown(title: string, s: ProfileSummary): string {
  const row = (x: SelfTime): string => `| ${x.name.replace(/\|/g, "\\|")} | ${x.ms.toFixed(0)} | ${(x.share * 100).toFixed(1)}% |`;
  return [
    `### ${title}`,
    "",
    `Main kiln process only (RUN children are separate processes; their wait shows as \`(idle)\`), ${(s.totalMs / 1000).toFixed(2)} s sampled.`,
    "",
    "| self time by module / file | ms | share |",
    "|---|---|---|",
    ...s.modules.slice(0, 12).map(row),
    "",
    "| self time by function | ms | share |",
    "|---|---|---|",
    ...s.functions.map(row),
  ].join("\n");
}
