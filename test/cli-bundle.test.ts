// The bundled CLI as `pnpm build` makes it: one CommonJS file run by the dist/main.js launcher through
// vm.Script with a V8 code cache, and Node built-ins (child_process, zlib, http, …) replaced by stand-ins
// that load the real module on first use. A build with a RUN step goes through those stand-ins
// (child_process for the sandbox, promisify(execFile) and its { stdout, stderr } result included).
import { copyFile, mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HELPER_BOOTSTRAP, HELPER_SLOT } from "@kiln/snapshot";
import { bundleCli, CODE_CACHE_FILE } from "../scripts/bundle.js";
import { requireTool } from "./support/tools.js";

const exec = promisify(execFile);
const repo = path.resolve(fileURLToPath(new URL("..", import.meta.url)));

let work: string;
let launcher: string;
let context: string;
let busybox: string;

beforeAll(async () => {
  busybox = await requireTool("busybox");
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-bundle-"));
  const out = path.join(work, "cli");
  await mkdir(out);
  // The launcher next to its bundle, as in packages/cli/dist (an ES module there too).
  await writeFile(path.join(out, "package.json"), JSON.stringify({ type: "module" }));
  await copyFile(path.join(repo, "packages/cli/dist/main.js"), path.join(out, "main.js"));
  await bundleCli({ outDir: out });
  launcher = path.join(out, "main.js");
  context = path.join(work, "ctx");
  await mkdir(context);
  await copyFile(busybox, path.join(context, "busybox"));
  await writeFile(
    path.join(context, "Dockerfile"),
    `FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo bundled > /out.txt"]\n`,
  );
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("bundled CLI", () => {
  it("starts the helper thread the way @kiln/snapshot expects (the launcher repeats its slot and bootstrap)", async () => {
    const launcherSource = await readFile(path.join(repo, "packages/cli/src/main.ts"), "utf8");
    expect(launcherSource).toContain(`export const HELPER_SLOT = ${JSON.stringify(HELPER_SLOT)};`);
    expect(launcherSource).toContain(`export const HELPER_BOOTSTRAP = \`${HELPER_BOOTSTRAP}\`;`);
  });

  it("builds with RUN, writes its code cache at the first build's exit, and rebuilds from the cache", async () => {
    const store = path.join(work, "store");
    const run = () => exec(process.execPath, [launcher, "build", "--store", store, "--progress", "plain", context], { env: process.env });
    const first = await run();
    const imageId = first.stdout.trim();
    expect(imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first.stderr).toMatch(/RUN \["\/bin\/busybox"/);
    const cache = await readFile(path.join(path.dirname(launcher), CODE_CACHE_FILE));
    expect(cache[0]).toBe(1); // made by a build
    expect(cache.length).toBeGreaterThan(1000);

    const second = await run();
    expect(second.stdout.trim()).toBe(imageId);
    expect(second.stderr.match(/CACHED/g)?.length).toBeGreaterThanOrEqual(2);
  });

  it("prints usage through the bundle, and a stale code cache is replaced, not trusted", async () => {
    const cacheFile = path.join(path.dirname(launcher), CODE_CACHE_FILE);
    await writeFile(cacheFile, Buffer.concat([Buffer.from([1]), Buffer.from("not a V8 code cache")]));
    const help = await exec(process.execPath, [launcher, "--help"]);
    expect(help.stdout).toContain("Usage: kiln COMMAND");
    const rewritten = await readFile(cacheFile);
    expect(rewritten.subarray(1).toString("latin1")).not.toBe("not a V8 code cache");
    expect(rewritten[0]).toBe(0); // made by a command other than build
  });
});
