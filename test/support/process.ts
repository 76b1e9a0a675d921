/** Small child-process helpers: run-to-completion with captured output, and liveness checks. */
import { spawn, type StdioOptions } from "node:child_process";
import type { Readable } from "node:stream";
import { CommandError, tail } from "./errors.js";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Piped to stdin (a stream is piped as it arrives). */
  input?: string | Buffer | Readable;
  signal?: AbortSignal;
  /** Keep at most this many bytes of stdout (default 16 MiB); stderr keeps its last 64 KiB. */
  maxStdout?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a command to completion; reject with CommandError on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const maxStdout = opts.maxStdout ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"];
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio, signal: opts.signal });
    const out: Buffer[] = [];
    let outLen = 0;
    let err = "";
    child.stdout?.on("data", (b: Buffer) => {
      if (outLen < maxStdout) {
        out.push(b);
        outLen += b.length;
      }
    });
    child.stderr?.on("data", (b: Buffer) => {
      err = tail(err + b.toString("utf8"), 65536);
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on("error", () => {
        // EPIPE when the child exits early; the exit code reports the real failure.
      });
      if (typeof opts.input === "string" || Buffer.isBuffer(opts.input)) child.stdin.end(opts.input);
      else opts.input.pipe(child.stdin);
    }
    child.on("error", reject);
    child.on("close", (code, sig) => {
      const stdout = Buffer.concat(out).toString("utf8");
      if (code === 0) resolve({ stdout, stderr: err });
      else reject(new CommandError([cmd, ...args].join(" "), code, sig, err || stdout));
    });
  });
}

/** True when a process with this pid exists (signal 0 probes without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Poll `probe` until it returns true or the deadline passes. */
export async function waitFor(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  opts: { intervalMs?: number; signal?: AbortSignal; giveUp?: () => boolean } = {},
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (opts.giveUp?.() || Date.now() > deadline) return false;
    await sleep(opts.intervalMs ?? 100, opts.signal);
  }
}
