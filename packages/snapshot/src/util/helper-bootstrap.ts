/**
 * Starting the helper thread's worker before the rest of kiln has loaded: a worker's boot (~20 ms of
 * Node start-up on the other core) then overlaps loading the CLI instead of the context walk that wants
 * its help. The worker runs a bootstrap that waits for its program (helper-thread.ts sends it), so starting
 * it needs nothing else from kiln. The worker is kept under a global symbol, so whoever started it (this
 * module, or the CLI launcher, which repeats the bootstrap) hands it to the copy of helper-thread.ts that
 * runs (the CLI bundle has its own).
 */
import { Worker, type WorkerOptions } from "node:worker_threads";

/** Also written out in the CLI launcher (packages/cli/src/main.ts), which cannot import this module. */
export const HELPER_SLOT = "kiln.helperThread.prestarted";
const SLOT = Symbol.for(HELPER_SLOT);

/** The worker's first message is its program (CommonJS source), run with the worker's `require`. */
export const HELPER_BOOTSTRAP = `require("node:worker_threads").parentPort.once("message", (source) => new Function("require", source)(require));`;

/** CommonJS eval, whatever flags the process was started with (--input-type=module would make it ESM). */
const WORKER_OPTIONS: WorkerOptions = { eval: true, execArgv: [] };

type Slot = { [SLOT]?: Worker };

/** Starts the helper thread's worker now (once per process); helper-thread.ts adopts it on first use. */
export function prestartHelperThread(): void {
  const g = globalThis as Slot;
  if (g[SLOT]) return;
  const worker = new Worker(HELPER_BOOTSTRAP, WORKER_OPTIONS);
  worker.unref();
  g[SLOT] = worker;
}

/** The prestarted worker (taken: a second call returns undefined), or a new one running the bootstrap. */
export function takeHelperWorker(): Worker {
  const g = globalThis as Slot;
  const worker = g[SLOT];
  delete g[SLOT];
  return worker ?? new Worker(HELPER_BOOTSTRAP, WORKER_OPTIONS);
}
