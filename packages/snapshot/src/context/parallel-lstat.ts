// lstat of a known list of context paths on two threads: the main thread and the helper thread take
// chunks of the list from a shared counter and write the numbers into one shared array. ~20k lstats
// cost ~50 ms on one core here (the syscall itself: `find` needs as long) and ~30 ms on two. When the
// helper thread is busy or still booting the main thread simply takes every chunk itself.
import { type HelperThread, HELPER_LSTAT_FIELDS } from "../util/helper-thread.js";
import { RAW_FIELDS, lstatInto, usesRawLstat } from "./fast-lstat.js";

const CHUNK = 512;
/** Fewer paths than this are not worth a message to the helper thread. */
const MIN_SHARED = 2 * CHUNK;
/** How long to wait for a chunk the helper thread claimed before doing it here instead. */
const CHUNK_WAIT_MS = 500;

const PAUSE_EVERY_MS = 2;
/** helperOnly waits for the helper thread to boot and do everything. */
const HELPER_ONLY_WAIT_MS = 10_000;

const UNDONE = 0;
const DONE = 1;
const FAILED = 2;

/**
 * lstat numbers (RAW_FIELDS per path, fast-lstat.ts's order) of `prefix + paths[i]` for every i, or
 * undefined when any path vanished or could not be lstat'ed (the caller walks instead, which reports it).
 * `joined` is paths.join("\0") (the form the helper thread receives).
 */
export async function lstatPaths(
  prefix: string,
  paths: readonly string[],
  joined: string,
  helper: HelperThread | undefined,
  options: { signal?: AbortSignal; /** Tests: leave every chunk to the helper thread (pins its numbers to ours). */ helperOnly?: boolean } = {},
): Promise<Float64Array | undefined> {
  const { signal } = options;
  const n = paths.length;
  if (HELPER_LSTAT_FIELDS !== RAW_FIELDS) throw new Error("helper thread and walk disagree on the lstat layout");
  const nums = new Float64Array(new SharedArrayBuffer(Math.max(1, n) * RAW_FIELDS * 8));
  const chunks = Math.ceil(n / CHUNK);
  const ctl = new Int32Array(new SharedArrayBuffer(4 * (1 + chunks)));
  // The helper writes the binding's numbers directly, so it is only used when this process trusts the binding.
  const shared = helper?.alive === true && n >= MIN_SHARED && usesRawLstat(prefix);
  if (shared) helper.post({ t: "lstat", prefix, paths: joined, nums: nums.buffer, ctl: ctl.buffer, chunk: CHUNK });

  const run = (c: number): boolean => {
    const end = Math.min(n, (c + 1) * CHUNK);
    for (let i = c * CHUNK; i < end; i++) if (!lstatInto(prefix + (paths[i] as string), prefix, nums, i * RAW_FIELDS)) return false;
    return true;
  };
  let lastPause = performance.now();
  try {
    for (;;) {
      if (shared && options.helperOnly) break;
      const c = Atomics.add(ctl, 0, 1);
      if (c >= chunks) break;
      if (!run(c)) return undefined;
      Atomics.store(ctl, 1 + c, DONE);
      // Let the build's other I/O (store reads, lease and lock files) proceed between chunks, as the full
      // walk does; the helper thread goes on meanwhile.
      if (performance.now() - lastPause >= PAUSE_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        signal?.throwIfAborted();
        lastPause = performance.now();
      }
    }
  } catch (e) {
    if (signal?.aborted) throw e;
    return undefined;
  }
  if (!shared) return nums;
  for (let c = 0; c < chunks; c++) {
    if (Atomics.load(ctl, 1 + c) === UNDONE && Atomics.wait(ctl, 1 + c, UNDONE, options.helperOnly ? HELPER_ONLY_WAIT_MS : CHUNK_WAIT_MS) === "timed-out") {
      // The helper stalled (or died) mid-chunk: do it here; its late writes would be equally fresh numbers.
      try {
        if (!run(c)) return undefined;
      } catch {
        return undefined;
      }
      continue;
    }
    if (Atomics.load(ctl, 1 + c) === FAILED) return undefined;
  }
  // A vanished path is marked NaN by the helper.
  for (let o = 0; o < n * RAW_FIELDS; o += RAW_FIELDS) if (Number.isNaN(nums[o])) return undefined;
  return nums;
}
