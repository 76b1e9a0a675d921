/**
 * Timed child processes: wall-clock of the whole CLI process (hrtime from spawn to exit) and, on request,
 * the peak RSS summed over its process tree (polled from /proc, since ru_maxrss is per process and the
 * tools fork helpers), plus the peak growth of a long-lived daemon (dockerd) during the same span.
 */
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { BenchError } from "./errors.js";

export interface TimedRun {
  ms: number;
  /** Peak of the summed RSS of the child and its descendants, in bytes (when sampled). */
  peakTreeRss?: number;
  /** Peak RSS growth of the watched daemon over its value at spawn time, in bytes. */
  daemonRssDelta?: number;
}

export interface TimedOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Sample the process tree's RSS every `sampleMs` (0 = do not sample). */
  sampleMs?: number;
  /** A daemon pid whose RSS growth (with its descendants) is attributed to this run. */
  daemonPid?: number;
  signal?: AbortSignal;
  /** Kill the process tree's leader (SIGKILL) after this long: a hung build must not stall the bench. */
  timeoutMs?: number;
}

/** A build that takes longer than this has hung (the slowest legitimate one, Buildah's, takes ~4 min). */
export const DEFAULT_TIMEOUT_MS = Number(process.env.KILN_BENCH_TIMEOUT_MS ?? 15 * 60_000);

const PAGE = 4096;

interface ProcEntry {
  pid: number;
  ppid: number;
  rss: number;
}

async function readProcTable(): Promise<ProcEntry[]> {
  const out: ProcEntry[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => undefined);
    if (!stat) continue;
    // comm (field 2) may hold spaces and parens: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.push({ pid: Number(name), ppid: Number(rest[1]), rss: Number(rest[21]) * PAGE });
  }
  return out;
}

/** Summed RSS of `root` and all its descendants. */
export function treeRss(table: readonly ProcEntry[], root: number): number {
  const children = new Map<number, ProcEntry[]>();
  for (const p of table) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  let total = 0;
  const stack = table.filter((p) => p.pid === root);
  while (stack.length > 0) {
    const p = stack.pop()!;
    total += p.rss;
    stack.push(...(children.get(p.pid) ?? []));
  }
  return total;
}

/** Run `cmd args` to completion, timing it; rejects with BenchError (with the output tail) on failure. */
export async function timed(cmd: string, args: readonly string[], opts: TimedOptions = {}): Promise<TimedRun> {
  const daemonBase = opts.daemonPid !== undefined ? treeRss(await readProcTable(), opts.daemonPid) : 0;
  let peakTree = 0;
  let peakDaemon = daemonBase;
  let output = "";
  const start = process.hrtime.bigint();
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"], signal: opts.signal });
  const keep = (b: Buffer): void => {
    output = (output + b.toString("utf8")).slice(-8000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, sig) => resolve({ code, sig }));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  let done = false;
  const sampler = (async () => {
    if (!opts.sampleMs || child.pid === undefined) return;
    while (!done) {
      const table = await readProcTable();
      peakTree = Math.max(peakTree, treeRss(table, child.pid));
      if (opts.daemonPid !== undefined) peakDaemon = Math.max(peakDaemon, treeRss(table, opts.daemonPid));
      await new Promise((r) => setTimeout(r, opts.sampleMs));
    }
  })();
  const { code, sig } = await exited.finally(() => clearTimeout(timer));
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  done = true;
  await sampler;
  if (timedOut) throw new BenchError(`${[cmd, ...args].join(" ")} hung: killed after ${((opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000).toFixed(0)} s:\n${output.trim()}`);
  if (code !== 0) {
    throw new BenchError(`${[cmd, ...args].join(" ")} failed (${sig ?? `exit ${code}`}):\n${output.trim()}`);
  }
  const result: TimedRun = { ms };
  if (opts.sampleMs) {
    result.peakTreeRss = peakTree;
    if (opts.daemonPid !== undefined) result.daemonRssDelta = peakDaemon - daemonBase;
  }
  return result;
}
