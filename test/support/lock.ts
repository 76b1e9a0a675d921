/**
 * Cross-process mutual exclusion for service start-up. vitest runs test files in several forked workers
 * that may all ask for dockerd at once; a mkdir()-based lock is atomic on every local filesystem and
 * records its owner's pid so a lock left by a killed process is reclaimed.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { ServiceError } from "./errors.js";
import { lockDir } from "./paths.js";
import { isAlive, sleep } from "./process.js";

export interface LockOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export async function withLock<T>(name: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const dir = path.join(lockDir(), `${name}.lock`);
  await mkdir(lockDir(), { recursive: true });
  const deadline = Date.now() + (opts.timeoutMs ?? 20 * 60_000);
  for (;;) {
    try {
      await mkdir(dir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = Number.parseInt(await readFile(path.join(dir, "pid"), "utf8").catch(() => ""), 10);
    // A lock dir without a pid file is either being created right now or was abandoned mid-create;
    // treat it as live for a grace period by only reclaiming locks whose recorded owner is dead.
    if (Number.isFinite(owner) && !isAlive(owner)) {
      await rm(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new ServiceError("lock", `timed out waiting for ${dir} (held by pid ${owner})`);
    await sleep(150, opts.signal);
  }
  try {
    await writeFile(path.join(dir, "pid"), String(process.pid));
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
