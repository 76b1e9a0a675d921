// Builds that start from and end in a registry: FROM pulls the base, --push uploads the result.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build, compareLastBuilds, formatComparison, openStore, type KilnStore } from "@kiln/core";
import { ensureRegistry } from "./support/services.js";
import { ensureBusyboxImage } from "./support/base-images.js";
import { docker } from "./support/docker.js";

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-regbuild-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("registry in and out of a build", () => {
  it("pulls FROM, pushes with --push, and a second push uploads nothing", async () => {
    const { host } = await ensureRegistry();
    const base = await ensureBusyboxImage();
    const store: KilnStore = await openStore(path.join(work, "store"));
    const ctx = path.join(work, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "Dockerfile"), `FROM ${base}\nRUN echo "pushed by kiln" > /motd\nCMD ["cat", "/motd"]\n`);
    const tag = `${host}/kiln-test/pushed-${process.pid}:1`;

    const first = await build({ context: ctx, store, tags: [tag], outputs: [{ type: "registry" }] }).result;
    expect(first.pushed).toHaveLength(1);
    expect(first.pushed[0]!.uploaded).toBeGreaterThan(0);
    // The base image was pulled into the store and tagged there.
    expect(await store.tags.get(base.includes(":") ? base : `${base}:latest`)).toBeDefined();

    // Same content again: HEAD finds every blob, nothing is uploaded.
    const second = await build({ context: ctx, store, tags: [tag], outputs: [{ type: "registry" }] }).result;
    expect(second.manifestDigest).toBe(first.manifestDigest);
    expect(second.pushed[0]!.uploaded).toBe(0);

    await docker(["pull", tag]);
    expect(await docker(["run", "--rm", "--network", "none", tag])).toBe("pushed by kiln\n");
    await docker(["rmi", tag]);
  }, 600_000);

  it("a fresh store pulls the base again and gets the same image", async () => {
    const base = await ensureBusyboxImage();
    const ctx = path.join(work, "ctx2");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "Dockerfile"), `FROM ${base}\nENV A=1\n`);
    const a = await build({ context: ctx, store: await openStore(path.join(work, "s1")), sourceDateEpoch: 1 }).result;
    const b = await build({ context: ctx, store: await openStore(path.join(work, "s2")), sourceDateEpoch: 1 }).result;
    expect(b.imageId).toBe(a.imageId);
    expect(a.image.manifest.layers.length).toBeGreaterThan(0);
  }, 600_000);
});

describe("explaining a changed base image", () => {
  it("--pull picks up a new base digest and the build says the base changed", async () => {
    const { host } = await ensureRegistry();
    const base = await ensureBusyboxImage();
    const moving = `${host}/kiln-test/moving-base-${process.pid}:latest`;
    const store = await openStore(path.join(work, "moving-store"));
    const mk = async (name: string, dockerfile: string) => {
      const dir = path.join(work, name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, "Dockerfile"), dockerfile);
      return dir;
    };
    // Two versions of the base, pushed to the same tag one after the other.
    const v1 = await mk("base-v1", `FROM ${base}\nRUN echo v1 > /version\n`);
    const v2 = await mk("base-v2", `FROM ${base}\nRUN echo v2 > /version\n`);
    const app = await mk("app", `FROM ${moving}\nRUN cat /version > /seen\n`);
    const builderStore = await openStore(path.join(work, "base-builder"));
    await build({ context: v1, store: builderStore, tags: [moving], outputs: [{ type: "registry" }] }).result;
    await build({ context: app, store }).result;

    await build({ context: v2, store: builderStore, tags: [moving], outputs: [{ type: "registry" }] }).result;
    const run = build({ context: app, store, pull: true });
    const ends: { instruction: string; cached: boolean; miss?: unknown }[] = [];
    run.onEvent((e) => {
      if (e.type === "step-end") ends.push({ instruction: e.step.instruction, cached: e.cached, ...(e.miss ? { miss: e.miss } : {}) });
    });
    await run.result;
    expect(ends[0]).toMatchObject({ instruction: `FROM ${moving}`, cached: false, miss: { kind: "base-changed" } });
    expect(ends[1]).toMatchObject({ cached: false, miss: { kind: "parent-changed" } });
    const comparison = await compareLastBuilds({ context: app, store });
    expect(comparison.steps[0]!.change).toMatchObject({ kind: "base-changed" });
    expect(formatComparison(comparison)).toContain("base image changed");
  }, 600_000);
});

describe("kiln pull / kiln push", () => {
  it("pull stores and tags an image once; push uploads a tagged image", async () => {
    const base = await ensureBusyboxImage();
    const { host } = await ensureRegistry();
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const { fileURLToPath } = await import("node:url");
    const cli = path.join(path.resolve(fileURLToPath(new URL("..", import.meta.url))), "packages/cli/dist/main.js");
    const env = { ...process.env, KILN_STORE: path.join(work, "pull-store") };
    const run = (args: string[]) => promisify(execFile)(process.execPath, [cli, ...args], { env });
    const first = await run(["pull", base]);
    expect(first.stdout).toMatch(/[1-9]\d* blobs downloaded, 0 already present/);
    const second = await run(["pull", base]);
    expect(second.stdout).toContain("0 blobs downloaded");
    const target = `${host}/kiln-test/repushed-${process.pid}:1`;
    const ctx = path.join(work, "retag");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "Dockerfile"), `FROM ${base}\nLABEL retagged=yes\n`);
    await run(["build", "-q", "-t", target, ctx]);
    const pushed = await run(["push", target]);
    expect(pushed.stdout).toMatch(/blobs uploaded/);
    const again = await run(["push", target]);
    expect(again.stdout).toContain(": 0 blobs uploaded");
  }, 300_000);
});
