#!/usr/bin/env node
// The kiln command's entry: runs the one-file bundle (faster to load) when none of its inputs changed
// since it was made by `pnpm build`, and the compiled modules otherwise, so a stale bundle never runs.
// The bundle is compiled through vm.Script with V8's code cache, kept next to it: compiling ~500 KiB of
// JavaScript is a large part of a warm rebuild's ~0.1 s, and the cache turns it into a deserialization.
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";
import { Worker } from "node:worker_threads";

/**
 * A build's helper thread (@kiln/snapshot's helper-thread.ts) boots on the other core while the rest of kiln
 * loads. This launcher imports built-ins only (it runs next to a copied bundle), so it repeats the two things
 * helper-bootstrap.ts defines: the global slot the worker is left in and the bootstrap program, which waits
 * for its real program as its first message. A test keeps the two copies equal.
 */
export const HELPER_SLOT = "kiln.helperThread.prestarted";
export const HELPER_BOOTSTRAP = `require("node:worker_threads").parentPort.once("message", (source) => new Function("require", source)(require));`;

if (process.argv[2] === "build") {
  const worker = new Worker(HELPER_BOOTSTRAP, { eval: true, execArgv: [] });
  worker.unref();
  (globalThis as Record<symbol, unknown>)[Symbol.for(HELPER_SLOT)] = worker;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The fresh bundle's path, or undefined when it is missing or older than one of its inputs. */
function freshBundle(): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(`${here}/kiln.bundle.json`, "utf8")) as { version?: number; bundle?: string; inputs?: Record<string, number> };
    if (manifest.version !== 2 || !manifest.inputs || typeof manifest.bundle !== "string") return undefined;
    for (const [file, mtimeMs] of Object.entries(manifest.inputs)) if (statSync(file).mtimeMs !== mtimeMs) return undefined;
    return `${here}/${manifest.bundle}`;
  } catch {
    return undefined;
  }
}

function readOptional(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * Runs the CommonJS bundle, compiled with the code cache when V8 accepts it (and refreshing it when not).
 * The cache file is one byte (1 when a `build` made it) and V8's data: V8 compiles functions lazily, so a
 * cache made at the exit of a build also covers the build's functions, and replaces one made by `--help`.
 */
function runBundle(file: string): void {
  const cacheFile = file.replace(/\.cjs$/, ".cache");
  const isBuild = process.argv[2] === "build";
  let source = readFileSync(file, "utf8");
  if (source.startsWith("#!")) source = `//${source.slice(2)}`; // keep line numbers for the source map
  const stored = readOptional(cacheFile);
  const cachedData = stored && stored.length > 1 ? stored.subarray(1) : undefined;
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  if (!cachedData || script.cachedDataRejected || (isBuild && stored?.[0] !== 1)) {
    process.once("exit", () => {
      try {
        const tmp = `${cacheFile}.tmp-${process.pid}`;
        writeFileSync(tmp, Buffer.concat([Buffer.from([isBuild ? 1 : 0]), script.createCachedData()]));
        renameSync(tmp, cacheFile);
      } catch {
        // only an accelerator (e.g. a read-only install): the next start compiles again
      }
    });
  }
  const module = { exports: {} };
  const run = script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void;
  run(module.exports, createRequire(file), module, file, dirname(file));
}

const bundle = freshBundle();
if (bundle) runBundle(bundle);
else await import("./cli.js");
