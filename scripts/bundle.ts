// Bundles the compiled CLI (tsc output) into one CommonJS file, packages/cli/dist/kiln.bundle.cjs.
// Why: resolving and compiling ~150 small modules costs ~100 ms of every `kiln` start, more
// than a whole warm rebuild should take. CommonJS (not ESM) so the launcher can compile it with
// vm.Script and V8's code cache, which ESM cannot use on Node 20. Node built-ins that only some
// commands need (http, tls, child_process, zlib, …) are loaded on first use, not at start.
// The bundle is a build artefact only: the launcher (dist/main.js) uses it when the manifest
// written next to it shows that none of its inputs changed since, and the plain tsc output
// otherwise, so a stale bundle can never run.
// Run after `tsc -b`: `tsx scripts/bundle.ts`.
import { createRequire } from "node:module";
import { existsSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The part of esbuild's API used here (typed locally so type-checking does not need esbuild's types). */
interface EsbuildPluginBuild {
  onResolve(
    options: { filter: RegExp },
    cb: (args: { path: string; namespace: string }) => { path: string; namespace?: string; external?: boolean } | undefined,
  ): void;
  onLoad(options: { filter: RegExp; namespace: string }, cb: (args: { path: string }) => { contents: string; loader: string }): void;
}
interface EsbuildModule {
  build(options: Record<string, unknown>): Promise<{ metafile: { inputs: Record<string, unknown> } }>;
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(repo, "packages/cli/dist");
export const BUNDLE_FILE = "kiln.bundle.cjs";
export const MANIFEST_FILE = "kiln.bundle.json";
/** V8 code cache of the bundle; written by the launcher, so a new bundle must drop the old one. */
export const CODE_CACHE_FILE = "kiln.bundle.cache";

/** The bundle manifest: every input file (absolute) with the mtime it had when bundled. */
export interface BundleManifest {
  version: 2;
  bundle: string;
  inputs: Record<string, number>;
}

/**
 * Built-ins a warm `kiln build` never touches. Each is replaced by a stand-in whose properties
 * load the real module on first access; esbuild reads imported names off the module object at
 * each use, so an import alone loads nothing (saves ~20 ms of start-up).
 */
export const LAZY_BUILTINS = ["child_process", "dgram", "http", "https", "net", "readline", "tls", "worker_threads", "zlib"];

async function loadEsbuild(): Promise<EsbuildModule> {
  const name = "esbuild"; // a variable, so type-checking does not need esbuild's types
  return (await import(name)) as EsbuildModule;
}

/** A CommonJS stand-in for built-in `name`: one lazy getter per export the module has here. */
function lazyBuiltinSource(name: string): string {
  const keys = Object.keys(createRequire(import.meta.url)(`node:${name}`) as object);
  const lines = keys.map((k) => `Object.defineProperty(module.exports, ${JSON.stringify(k)}, { enumerable: true, get: () => load()[${JSON.stringify(k)}] });`);
  return `let real; const load = () => (real ??= require(${JSON.stringify(`node:${name}`)}));\n${lines.join("\n")}\n`;
}

const lazyBuiltins = {
  name: "lazy-builtins",
  setup(build: EsbuildPluginBuild): void {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join("|")})$`);
    build.onResolve({ filter }, (args) =>
      // The stand-in's own require() of the real module stays external.
      args.namespace === "lazy-builtin" ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtin" },
    );
    build.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => ({ contents: lazyBuiltinSource(args.path), loader: "js" }));
  },
};

/** Bundles into `outDir` (default packages/cli/dist, next to the launcher that runs it). */
export async function bundleCli(options: { outDir?: string } = {}): Promise<{ file: string; bytes: number; inputs: number }> {
  const esbuild = await loadEsbuild();
  const outDir = options.outDir ?? dist;
  // dist/cli.js is the real entry once main.js is the launcher; before that, main.js is.
  const entry = existsSync(path.join(dist, "cli.js")) ? path.join(dist, "cli.js") : path.join(dist, "main.js");
  const outfile = path.join(outDir, BUNDLE_FILE);
  const result = await esbuild.build({
    absWorkingDir: repo,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: "none",
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
    plugins: [lazyBuiltins],
    // import() of a built-in becomes require(): the launcher runs the bundle as a vm.Script,
    // which has no dynamic-import hook.
    supported: { "dynamic-import": false },
  });
  const inputs: Record<string, number> = {};
  for (const rel of Object.keys(result.metafile.inputs)) {
    if (rel.startsWith("lazy-builtin:")) continue;
    const abs = path.resolve(repo, rel);
    inputs[abs] = statSync(abs).mtimeMs;
  }
  // Remove what an older bundler left (the ESM bundle) and the code cache of the previous bundle.
  for (const old of ["kiln.bundle.mjs", "kiln.bundle.mjs.map", CODE_CACHE_FILE]) rmSync(path.join(outDir, old), { force: true });
  const manifest: BundleManifest = { version: 2, bundle: BUNDLE_FILE, inputs };
  writeFileSync(path.join(outDir, MANIFEST_FILE), `${JSON.stringify(manifest)}\n`);
  return { file: outfile, bytes: statSync(outfile).size, inputs: Object.keys(inputs).length };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await bundleCli();
  process.stdout.write(`bundled ${r.inputs} modules into ${path.relative(repo, r.file)} (${(r.bytes / 1024).toFixed(0)} KiB)\n`);
}
