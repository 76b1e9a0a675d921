// Exponential backoff for transient registry failures. A retried transfer starts over from byte 0:
// partial blobs are never resumed, so a retry can never splice bytes from two responses.
import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { RegistryError, TruncatedBodyError } from "./errors.js";

export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000 };

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

/** Connection resets, truncated bodies, 5xx, 408 and 429 are worth another try; everything else is final. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TruncatedBodyError) return true;
  if (err instanceof RegistryError) return err.status >= 500 || err.status === 429 || err.status === 408;
  if (err instanceof Error) {
    if (err.name === "AbortError") return false;
    const code = (err as NodeJS.ErrnoException).code;
    if (code && TRANSIENT_CODES.has(code)) return true;
    if (err.message === "socket hang up" || err.message === "aborted") return true;
    if (err.cause !== undefined && err.cause !== err) return isTransient(err.cause);
  }
  return false;
}

export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  // Full jitter on the upper half keeps parallel downloads from retrying in lockstep.
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  onRetry?: (attempt: number, delayMs: number, error: Error) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      // A cancelled transfer surfaces as a reset or truncation: report the cancellation instead.
      if (signal?.aborted) throw signal.reason ?? err;
      if (attempt >= policy.attempts || !isTransient(err)) throw err;
      const delay = backoffDelay(policy, attempt);
      onRetry?.(attempt, delay, err as Error);
      await sleep(delay, undefined, signal ? { signal } : {});
    }
  }
}

/**
 * Runs `fn` over `items` with at most `limit` in flight. The first failure aborts the others (through the
 * signal passed to `fn`), waits for them to settle, and is rethrown.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  const ctl = new AbortController();
  // Every in-flight request, pipeline and ingest listens on this one signal.
  setMaxListeners(0, ctl.signal);
  const onAbort = (): void => ctl.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !ctl.signal.aborted) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, ctl.signal);
      } catch (err) {
        failure ??= { error: err };
        ctl.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  signal?.throwIfAborted();
  if (failure) throw failure.error;
  return results;
}
