import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isErrno, tempName, unlinkIfExists, unlinkIfExistsSync } from "./fs-util.js";
import { isProcessAlive } from "./process.js";

export interface FileLockOptions {
  signal?: AbortSignal;
  /**
   * Also treat a lock as stale once it is older than this, whoever holds it. Without it, only locks whose
   * holder pid is dead on this host are broken (locks of other hosts are then waited for indefinitely).
   */
  staleMs?: number;
  /** First retry delay; doubles up to maxPollMs. Defaults 10 and 250. */
  pollMs?: number;
  maxPollMs?: number;
}

export interface FileLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

interface LockOwner {
  pid: number;
  hostname: string;
  token: string;
  acquiredAt: string;
}

interface LockFileState {
  raw: string;
  owner: LockOwner | undefined;
  mtimeMs: number;
}

/** Foreign or garbled lock files (we never write partial ones) count as stale after this long. */
const UNREADABLE_LOCK_STALE_MS = 10_000;
/** A breaker holds its marker for two syscalls; one older than this belongs to a dead breaker. */
const BREAKER_STALE_MS = 10_000;

/**
 * Cross-process mutual exclusion on `path`. The lock file is written in full to a temp name first and then
 * hard-linked into place, so it appears atomically with its owner info (link fails with EEXIST like O_EXCL).
 * A lock whose owner pid is dead on this host is broken. Waiters within one process queue in memory (FIFO).
 * Not re-entrant: taking the same lock again while holding it waits forever (or until `signal` aborts).
 */
export async function acquireFileLock(path: string, options: FileLockOptions = {}): Promise<FileLock> {
  const { signal } = options;
  const leaveLocal = await enterLocalQueue(resolve(path), signal);
  try {
    const owner: LockOwner = {
      pid: process.pid,
      hostname: hostname(),
      token: randomBytes(16).toString("hex"),
      acquiredAt: new Date().toISOString(),
    };
    const raw = JSON.stringify(owner);
    mkdirSync(dirname(path), { recursive: true });
    let delay = options.pollMs ?? 10;
    const maxDelay = options.maxPollMs ?? 250;
    for (;;) {
      signal?.throwIfAborted();
      if (tryLink(path, raw)) return new HeldLock(path, raw, leaveLocal);
      if (await breakIfStale(path, options)) continue;
      await pause(delay, signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  } catch (err) {
    leaveLocal();
    throw err;
  }
}

/**
 * One attempt: write the owner info to a private temp file and hard-link it to `path`. The temp file exists
 * only for the duration of the attempt, so a waiter that is killed leaves nothing behind.
 * Synchronous, like release(): four small local syscalls cost ~20 µs this way, against ~1 ms as thread-pool
 * round trips, and a build takes and releases the store's locks several times even when fully cached.
 */
function tryLink(path: string, raw: string): boolean {
  const tmp = `${path}.${tempName("pending")}`;
  writeFileSync(tmp, raw, { flag: "wx" });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if (isErrno(err, "EEXIST")) return false;
    throw err;
  } finally {
    unlinkIfExistsSync(tmp);
  }
}

/** Waiters in this process queue per lock path instead of polling the lock file against each other. */
const localTails = new Map<string, Promise<void>>();

/** Waits for this process's earlier waiters on `key`; resolves to the function that hands over the turn. */
async function enterLocalQueue(key: string, signal: AbortSignal | undefined): Promise<() => void> {
  const prev = localTails.get(key) ?? Promise.resolve();
  let leave!: () => void;
  const mine = new Promise<void>((r) => (leave = r));
  const tail = prev.then(() => mine);
  localTails.set(key, tail);
  let left = false;
  const done = () => {
    if (left) return;
    left = true;
    leave();
    if (localTails.get(key) === tail) localTails.delete(key);
  };
  try {
    await untilAborted(prev, signal);
  } catch (err) {
    // Keep the queue intact: our turn passes straight on to the next waiter once it comes.
    void prev.then(done);
    throw err;
  }
  return done;
}

function untilAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  return new Promise<void>((resolvePromise, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolvePromise();
    });
  });
}

/** Runs `fn` while holding the lock at `path`; the lock is released however `fn` ends. */
export async function withFileLock<T>(path: string, fn: () => Promise<T> | T, options: FileLockOptions = {}): Promise<T> {
  const lock = await acquireFileLock(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Like timers/promises setTimeout, but rejects with the signal's own reason (e.g. a TimeoutError). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

class HeldLock implements FileLock {
  #released = false;
  constructor(
    readonly path: string,
    private readonly raw: string,
    private readonly leaveLocal: () => void,
  ) {}

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    try {
      // Only remove our own file: if we were (wrongly) considered stale, the file now belongs to someone else.
      if (readLockRawSync(this.path) === this.raw) unlinkIfExistsSync(this.path);
    } finally {
      this.leaveLocal();
    }
  }
}

async function readLockFile(path: string): Promise<LockFileState | undefined> {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = readFileSync(path, "utf8");
    mtimeMs = statSync(path).mtimeMs;
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  return { raw, owner: parseOwner(raw), mtimeMs };
}

function readLockRawSync(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
}

function parseOwner(raw: string): LockOwner | undefined {
  try {
    const v = JSON.parse(raw) as Partial<LockOwner>;
    if (typeof v.pid === "number" && typeof v.hostname === "string" && typeof v.token === "string") return v as LockOwner;
  } catch {
    // fall through
  }
  return undefined;
}

function isStale(state: LockFileState, options: FileLockOptions): boolean {
  const age = Date.now() - state.mtimeMs;
  if (options.staleMs !== undefined && age > options.staleMs) return true;
  if (state.owner === undefined) return age > UNREADABLE_LOCK_STALE_MS;
  return state.owner.hostname === hostname() && !isProcessAlive(state.owner.pid);
}

/**
 * Removes the lock at `path` if it is stale. Returns true when the caller should retry at once (lock gone).
 * Breakers serialise on a `.break` marker and re-check the token under it, so a slow breaker can never delete
 * a fresh lock that a faster one has just taken.
 */
async function breakIfStale(path: string, options: FileLockOptions): Promise<boolean> {
  const seen = await readLockFile(path);
  if (seen === undefined) return true;
  if (!isStale(seen, options)) return false;
  const breaker = `${path}.break`;
  try {
    await writeFile(breaker, String(process.pid), { flag: "wx" });
  } catch (err) {
    if (!isErrno(err, "EEXIST")) throw err;
    const st = await stat(breaker).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > BREAKER_STALE_MS) await unlinkIfExists(breaker);
    return false;
  }
  try {
    const again = await readLockFile(path);
    if (again !== undefined && again.raw === seen.raw) await unlinkIfExists(path);
  } finally {
    await unlinkIfExists(breaker);
  }
  return true;
}
