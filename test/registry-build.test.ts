// Builds that start from and end in a registry: FROM pulls the base, --push uploads the result.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build, openStore, type KilnStore } from "@kiln/core";
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
