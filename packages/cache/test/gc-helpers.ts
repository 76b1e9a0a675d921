// Shared by the gc/lease tests: child processes running the cache sources, dead pids, aged records.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { digestHex, type Digest } from "../src/index.js";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const cacheIndexTs = fileURLToPath(new URL("../src/index.ts", import.meta.url));

const running = new Set<ChildProcess>();

/** Runs a TypeScript worker (written to `file`) with tsx, so it uses the package sources directly. */
export async function spawnWorker(file: string, source: string, args: string[]): Promise<ChildProcess> {
  await writeFile(file, source);
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

export function killWorkers(): void {
  for (const c of running) c.kill("SIGKILL");
  running.clear();
}

export async function waitForOutput(child: ChildProcess, text: string): Promise<void> {
  let buf = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString("utf8")));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf += d.toString("utf8");
      if (buf.includes(text)) {
        child.stdout?.off("data", onData);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`worker exited (${code}) before printing ${text}: ${buf} ${err}`)));
  });
}

export async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await once(child, "exit");
}

/** A pid that certainly belonged to a process that has exited. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await once(child, "exit");
  return child.pid!;
}

/** Makes a record look last used `ageMs` ago (its JSON and the mtime that touch() maintains). */
export async function ageRecord(root: string, key: Digest, ageMs: number): Promise<void> {
  const hex = digestHex(key);
  const file = join(root, "index", "records", hex.slice(0, 2), `${hex}.json`);
  const when = new Date(Date.now() - ageMs);
  const rec = JSON.parse(await readFile(file, "utf8")) as { lastUsedAt: string };
  rec.lastUsedAt = when.toISOString();
  await writeFile(file, JSON.stringify(rec));
  await utimes(file, when, when);
}

/** Back-dates a blob's mtime (GC keeps blobs written since the oldest live lease began). */
export async function ageFile(path: string, ageMs: number): Promise<void> {
  const when = new Date(Date.now() - ageMs);
  await utimes(path, when, when);
}
