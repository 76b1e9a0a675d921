// Bundles the compiled CLI (tsc output) into one ES module, packages/cli/dist/kiln.bundle.mjs.
// Why: resolving and compiling ~150 small modules costs ~100 ms of every `kiln` start, more
// than a whole warm rebuild should take. The bundle is a build artefact only: the launcher
// (dist/main.js) uses it when the manifest written next to it shows that none of its inputs
// changed since, and the plain tsc output otherwise, so a stale bundle can never run.
// Run after `tsc -b`: `tsx scripts/bundle.ts`.
import { statSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The part of esbuild's API used here (typed locally so type-checking does not need esbuild's types). */
interface EsbuildModule {
  build(options: Record<string, unknown>): Promise<{ metafile: { inputs: Record<string, unknown> } }>;
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(repo, "packages/cli/dist");
export const BUNDLE_FILE = "kiln.bundle.mjs";
export const MANIFEST_FILE = "kiln.bundle.json";

/** The bundle manifest: every input file (absolute) with the mtime it had when bundled. */
export interface BundleManifest {
  version: 1;
  inputs: Record<string, number>;
}

async function loadEsbuild(): Promise<EsbuildModule> {
  const name = "esbuild"; // a variable, so type-checking does not need esbuild's types
  return (await import(name)) as EsbuildModule;
}

export async function bundleCli(): Promise<{ file: string; bytes: number; inputs: number }> {
  const esbuild = await loadEsbuild();
  // dist/cli.js is the real entry once main.js is the launcher; before that, main.js is.
  const entry = existsSync(path.join(dist, "cli.js")) ? path.join(dist, "cli.js") : path.join(dist, "main.js");
  const outfile = path.join(dist, BUNDLE_FILE);
  const result = await esbuild.build({
    absWorkingDir: repo,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: "none",
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
    // CommonJS dependencies (tar-stream's tree) call require() for Node built-ins.
    banner: { js: 'import { createRequire as __kilnRequire } from "node:module"; const require = __kilnRequire(import.meta.url);' },
  });
  const inputs: Record<string, number> = {};
  for (const rel of Object.keys(result.metafile.inputs)) {
    const abs = path.resolve(repo, rel);
    inputs[abs] = statSync(abs).mtimeMs;
  }
  const manifest: BundleManifest = { version: 1, inputs };
  writeFileSync(path.join(dist, MANIFEST_FILE), `${JSON.stringify(manifest)}\n`);
  return { file: outfile, bytes: statSync(outfile).size, inputs: Object.keys(inputs).length };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await bundleCli();
  process.stdout.write(`bundled ${r.inputs} modules into ${path.relative(repo, r.file)} (${(r.bytes / 1024).toFixed(0)} KiB)\n`);
}
