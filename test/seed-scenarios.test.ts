// The seed articles' scenarios, end to end on a Debian base pulled from the local registry:
// the Node app whose `npm install` layer stays cached, and `apt-get clean` in its own layer.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { cp, mkdtemp, rm, appendFile, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, openStore, analyzeImage, imageHistory, type BuildEvent, type KilnStore } from "@kiln/core";
import { ensureDebianImage, ensureDebianNodeImage } from "./support/base-images.js";
import { docker } from "./support/docker.js";

const repo = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

let work: string;
let store: KilnStore;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-seeds-"));
  store = await openStore(path.join(work, "store"));
}, 1_800_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function stepEnd(events: BuildEvent[], prefix: string): Extract<BuildEvent, { type: "step-end" }> {
  const e = events.find((x) => x.type === "step-end" && x.step.instruction.startsWith(prefix));
  if (!e || e.type !== "step-end") throw new Error(`no step-end for ${prefix}`);
  return e;
}

describe("seed scenarios", () => {
  it("Node app: npm install stays cached while only sources change, and the image runs", async () => {
    const base = await ensureDebianNodeImage();
    const ctx = path.join(work, "node-app");
    await cp(path.join(repo, "examples/node-app"), ctx, { recursive: true });
    const opts = { context: ctx, store, tags: ["node-app:seed"], buildArgs: { BASE: base }, secrets: [{ id: "ca", src: CA_BUNDLE }] };
    const collect = async (extra: object = {}) => {
      const run = build({ ...opts, ...extra });
      const events: BuildEvent[] = [];
      run.onEvent((e) => events.push(e));
      return { result: await run.result, events };
    };
    const first = await collect({ outputs: [{ type: "docker", dest: path.join(work, "node-app.tar") }] });
    expect(stepEnd(first.events, "RUN --mount=type=secret,id=ca npm install").cached).toBe(false);

    // A source edit: the dependency layer is reused, only COPY . . and after are rebuilt.
    await appendFile(path.join(ctx, "src/server.js"), "// edited\n");
    const edited = await collect();
    expect(stepEnd(edited.events, "COPY package.json").cached).toBe(true);
    expect(stepEnd(edited.events, "RUN --mount=type=secret,id=ca npm install").cached).toBe(true);
    const copyAll = stepEnd(edited.events, "COPY . .");
    expect(copyAll.cached).toBe(false);
    expect(copyAll.miss).toEqual({ kind: "files-changed", added: [], removed: [], changed: ["src/server.js"] });

    // A dependency change reruns npm install.
    const pkg = JSON.parse(await readFile(path.join(ctx, "package.json"), "utf8"));
    pkg.dependencies["is-number"] = "7.0.0";
    pkg.version = "1.0.1";
    await writeFile(path.join(ctx, "package.json"), JSON.stringify(pkg, null, 2));
    const deps = await collect();
    expect(stepEnd(deps.events, "COPY package.json").miss).toMatchObject({ kind: "files-changed", changed: ["package.json"] });
    expect(stepEnd(deps.events, "RUN --mount=type=secret,id=ca npm install").cached).toBe(false);

    // The first image runs in dockerd, and the CA bundle is in none of its layers.
    await docker(["load", "-i", path.join(work, "node-app.tar")]);
    const out = await docker(["run", "--rm", "--network", "none", "node-app:seed"]);
    expect(out).toContain("kiln node app: 2 days is 172800000 ms; is-number(42) = true");
    const history = await imageHistory("node-app:seed", { store });
    expect(history.rows.some((r) => r.createdBy.includes("npm install"))).toBe(true);
    await docker(["rmi", "node-app:seed"]);
  }, 1_800_000);

  it("apt-get clean in its own layer does not shrink the image; in the same RUN it does", async () => {
    const base = await ensureDebianImage();
    const sizes: Record<string, number> = {};
    const wasted: Record<string, number> = {};
    for (const variant of ["separate", "same"]) {
      const ctx = path.join(repo, "examples/apt-clean", variant);
      const { image } = await build({ context: ctx, store, tags: [`apt-clean:${variant}`], buildArgs: { BASE: base } }).result;
      sizes[variant] = image.manifest.layers.reduce((sum, l) => sum + l.size, 0);
      wasted[variant] = (await analyzeImage(`apt-clean:${variant}`, { store })).wastedBytes;
    }
    // Random bytes do not compress: the separate-layer image carries the 4 MB .deb.
    expect(sizes["separate"]! - sizes["same"]!).toBeGreaterThan(3_900_000);
    expect(wasted["separate"]).toBeGreaterThanOrEqual(4_000_000);
    expect(wasted["same"]).toBe(0);
    const history = await imageHistory("apt-clean:separate", { store });
    const clean = history.rows.find((r) => r.createdBy.includes("apt-get clean"));
    expect(clean?.size).toBe(0);
  }, 1_800_000);
});

describe("multi-stage example", () => {
  it("the runtime image gets only the artifact and is far smaller than the build stage", async () => {
    const base = await ensureDebianImage();
    const ctx = path.join(repo, "examples/multi-stage");
    const buildArgs = { BASE: base };
    const toolchain = await build({ context: ctx, store, target: "build", buildArgs }).result;
    const runtime = await build({ context: ctx, store, tags: ["hello-slim:seed"], buildArgs, outputs: [{ type: "docker", dest: path.join(work, "slim.tar") }] }).result;
    const size = (r: typeof runtime) => r.image.manifest.layers.reduce((sum, l) => sum + l.size, 0);
    expect(runtime.image.manifest.layers).toHaveLength(1);
    expect(size(runtime)).toBeLessThan(2_000_000);
    expect(size(toolchain)).toBeGreaterThan(30 * size(runtime));
    await docker(["load", "-i", path.join(work, "slim.tar")]);
    expect(await docker(["run", "--rm", "--network", "none", "hello-slim:seed"])).toBe("hello from a slim image built by kiln\n");
    await docker(["rmi", "hello-slim:seed"]);
  }, 1_800_000);
});

describe("ephemeral-cache example", () => {
  it("run.sh: host B gets every step from host A's registry cache, then explains the invalidator", async () => {
    const { ensureBusyboxImage } = await import("./support/base-images.js");
    await ensureBusyboxImage();
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const { stdout } = await promisify(execFile)("bash", [path.join(repo, "examples/ephemeral-cache/run.sh")], { maxBuffer: 1 << 24 });
    const [, hostB, hostB2] = stdout.split(/^== /m).slice(1);
    expect(hostB).toBeDefined();
    const starts = hostB!.match(/^#\d+ \[/gm) ?? [];
    const cached = hostB!.match(/^#\d+ CACHED$/gm) ?? [];
    expect(starts.length).toBeGreaterThan(5);
    expect(cached).toHaveLength(starts.length);
    expect(hostB2).toContain("cache miss: build arg cache_invalidator");
  }, 600_000);
});
