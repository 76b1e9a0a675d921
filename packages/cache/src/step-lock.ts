// One builder per step key at a time across processes: a second build of the same step waits, then finds
// the first one's record instead of doing the work again.
import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { digestHex, type Digest } from "./digest.js";
import { withFileLock, type FileLockOptions } from "./file-lock.js";

export function stepLockPath(store: BlobStore, key: Digest): string {
  return join(store.dir("locks"), `step-${digestHex(key)}.lock`);
}

/**
 * Runs `fn` holding the step's lock. The engine should re-check the cache inside `fn` (another process may
 * have recorded the step while this one waited). Locks of killed holders are broken automatically.
 */
export function withStepLock<T>(store: BlobStore, key: Digest, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  return withFileLock(stepLockPath(store, key), fn, options);
}
