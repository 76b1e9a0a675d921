/** Start a long-lived daemon detached from the test worker, with its output in a log file. */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { ServiceError, tail } from "./errors.js";
import { isAlive, waitFor } from "./process.js";

export interface DaemonSpec {
  service: string;
  cmd: string;
  args: readonly string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /** Resolves true once the daemon answers. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Spawn detached (own process group, unref'd) so the daemon outlives the vitest worker that started it:
 * the next worker or the next run reuses it, and the globalSetup teardown stops it by pid.
 */
export async function startDaemon(spec: DaemonSpec): Promise<number> {
  const fd = openSync(spec.logFile, "a");
  let exited: string | undefined;
  let pid: number | undefined;
  try {
    const child = spawn(spec.cmd, spec.args, {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: spec.env ?? process.env,
    });
    child.on("exit", (code, sig) => {
      exited = sig ? `signal ${sig}` : `exit ${code}`;
    });
    child.on("error", (e) => {
      exited = e.message;
    });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(fd);
  }
  const ok = await waitFor(spec.ready, spec.readyTimeoutMs ?? 60_000, {
    signal: spec.signal,
    giveUp: () => exited !== undefined,
  });
  if (!ok || pid === undefined) {
    if (pid !== undefined && exited === undefined) await stopPid(pid);
    const log = await readFile(spec.logFile, "utf8").catch(() => "");
    throw new ServiceError(
      spec.service,
      `${exited ? `exited early (${exited})` : "did not become ready"}; log ${spec.logFile}:\n${tail(log, 3000)}`,
    );
  }
  return pid;
}

/** SIGTERM, then SIGKILL after a grace period. */
export async function stopPid(pid: number, graceMs = 30_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const gone = await waitFor(async () => !isAlive(pid), graceMs, { intervalMs: 100 });
  if (!gone) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    await waitFor(async () => !isAlive(pid), 5000, { intervalMs: 100 });
  }
}

export async function readPid(file: string): Promise<number | undefined> {
  const n = Number.parseInt(await readFile(file, "utf8").catch(() => ""), 10);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}
