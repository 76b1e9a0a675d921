// RUN and multi-stage behaviour of the engine on a real sandbox (root, overlayfs, namespaces).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { copyFile, mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build, openStore, BuildStepError, type BuildEvent, type BuildOptions, type KilnStore } from "@kiln/core";
import { readLayerTar } from "@kiln/snapshot";
import { requireTool } from "./support/tools.js";

const PRELUDE = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
`;

let work: string;
let store: KilnStore;
let n = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-run-"));
  store = await openStore(path.join(work, "store"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function context(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = path.join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "Dockerfile"), dockerfile);
  await copyFile(requireTool("busybox"), path.join(dir, "busybox"));
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
  return dir;
}

async function run(ctx: string, options: Partial<BuildOptions> = {}) {
  const r = build({ context: ctx, store, ...options });
  const events: BuildEvent[] = [];
  r.onEvent((e) => events.push(e));
  const result = await r.result;
  return { result, events };
}

async function layerPaths(digest: string): Promise<string[]> {
  const out: string[] = [];
  for await (const { entry, body } of readLayerTar(store.blobs.createReadStream(digest as `sha256:${string}`))) {
    body.resume();
    out.push(entry.path);
  }
  return out;
}

async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return info.split("\n").filter((l) => l.includes(dir));
}

describe("RUN", () => {
  it("streams output, caches the step, and reruns it only when its build arg changes", async () => {
    const ctx = await context(`${PRELUDE}ARG GREETING=hello\nRUN echo "$GREETING from $(hostname)" && echo done > /marker\n`);
    const first = await run(ctx);
    const logs = first.events.filter((e) => e.type === "step-log").map((e) => (e as { data: string }).data).join("");
    expect(logs).toContain("hello from buildkitsandbox");
    const second = await run(ctx);
    expect(second.events.filter((e) => e.type === "step-end").every((e) => (e as { cached: boolean }).cached)).toBe(true);
    const third = await run(ctx, { buildArgs: { GREETING: "bye" } });
    const end = (prefix: string) => third.events.find((e) => e.type === "step-end" && e.step.instruction.startsWith(prefix)) as Extract<BuildEvent, { type: "step-end" }>;
    // The ARG step is where the change enters; the RUN after it misses because its parent did.
    expect(end("ARG GREETING").miss).toEqual({ kind: "build-args-changed", changed: [{ name: "GREETING", previous: "hello", current: "bye" }] });
    expect(end("RUN echo").cached).toBe(false);
    expect(end("RUN echo").miss).toEqual({ kind: "parent-changed" });
    expect(third.result.image.config.history?.at(-1)?.created_by).toBe('RUN |1 GREETING=bye /bin/sh -c echo "$GREETING from $(hostname)" && echo done > /marker # buildkit');
  });

  it("fails with the step, exit code and last output, and leaves no mount behind", async () => {
    const ctx = await context(`${PRELUDE}RUN echo first line && echo "it broke" >&2 && exit 3\n`);
    const err = await run(ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BuildStepError);
    const message = (err as Error).message;
    expect(message).toMatch(/^Dockerfile:4: RUN echo first line/);
    expect(message).toContain("exit code: 3");
    expect(message).toContain("it broke");
    expect(await mountsUnder(work)).toEqual([]);
  });

  it("cancelling kills the command and unmounts everything", async () => {
    const ctx = await context(`${PRELUDE}RUN sleep 300\n`);
    const controller = new AbortController();
    const r = build({ context: ctx, store, signal: controller.signal });
    r.onEvent((e) => {
      if (e.type === "step-start" && e.step.instruction === "RUN sleep 300") setTimeout(() => controller.abort(), 500);
    });
    const started = Date.now();
    await expect(r.result).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await mountsUnder(work)).toEqual([]);
  });

  it("keeps secrets out of layers and keys, isolates --network=none, persists cache mounts", async () => {
    const secretFile = path.join(work, "token.txt");
    await writeFile(secretFile, "s3cret-value\n");
    const ctx = await context(
      `${PRELUDE}RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null && test "$(cat /run/secrets/token)" = s3cret-value && echo ok > /secret-ok
RUN --network=none sh -c 'ls /sys/class/net > /netifs'
RUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/count; wc -l < /cache/count > /count-seen'
`,
    );
    const { result } = await run(ctx, { secrets: [{ id: "token", src: secretFile }] });
    const layers = result.image.manifest.layers;
    const all = (await Promise.all(layers.map((l) => layerPaths(l.digest)))).flat();
    expect(all).toContain("secret-ok");
    expect(all.some((p) => p.startsWith("run/secrets"))).toBe(false);
    expect(all.some((p) => p.startsWith("cache/"))).toBe(false);
    for (const l of layers) {
      const bytes = await store.blobs.readBytes(l.digest);
      expect(bytes.includes(Buffer.from("s3cret-value"))).toBe(false);
    }
    // --no-cache reruns the cache-mount step: the persistent cache dir has grown.
    const again = await run(ctx, { secrets: [{ id: "token", src: secretFile }], noCache: true });
    expect(again.result.imageId).not.toBe(result.imageId);
  });

  it("a missing required secret fails clearly", async () => {
    const ctx = await context(`${PRELUDE}RUN --mount=type=secret,id=nope,required=true true\n`);
    await expect(run(ctx)).rejects.toThrow(/secret nope is required but was not provided/);
  });
});

describe("multi-stage scheduling", () => {
  it("runs independent stages at the same time and never runs a stage the target does not need", async () => {
    const ctx = await context(`${PRELUDE}
FROM busybox AS left
RUN sleep 2 && echo left > /left

FROM busybox AS right
RUN sleep 2 && echo right > /right

FROM busybox AS unused
RUN echo never > /never

FROM scratch
COPY --from=left /left /
COPY --from=right /right /
`);
    const { events, result } = await run(ctx);
    const span = (stage: string) => {
      const start = events.findIndex((e) => e.type === "step-start" && e.step.stage === stage && e.step.instruction.startsWith("RUN"));
      const end = events.findIndex((e) => e.type === "step-end" && e.step.stage === stage && e.step.instruction.startsWith("RUN"));
      return [start, end] as const;
    };
    const [ls, le] = span("left");
    const [rs, re] = span("right");
    expect(ls).toBeGreaterThanOrEqual(0);
    expect(rs).toBeGreaterThanOrEqual(0);
    // Each RUN started before the other one ended: they overlapped.
    expect(ls).toBeLessThan(re);
    expect(rs).toBeLessThan(le);
    expect(events.some((e) => e.type === "step-start" && e.step.stage === "unused")).toBe(false);
    expect(result.image.manifest.layers).toHaveLength(2);
  });

  it("runs ONBUILD triggers of a base stage and drops them from the result", async () => {
    const ctx = await context(
      `${PRELUDE}
FROM busybox AS base
ONBUILD COPY app.txt /app/
ONBUILD RUN echo triggered > /app/trigger

FROM base
RUN cat /app/app.txt /app/trigger > /app/both
`,
      { "app.txt": "app\n" },
    );
    const { result } = await run(ctx);
    expect(result.image.config.config?.OnBuild).toBeUndefined();
    const paths = (await Promise.all(result.image.manifest.layers.map((l) => layerPaths(l.digest)))).flat();
    expect(paths).toEqual(expect.arrayContaining(["app/app.txt", "app/trigger", "app/both"]));
  });
});

describe("RUN drivers and executors", () => {
  const dockerfile = `${PRELUDE}
FROM busybox AS data
RUN mkdir -p /data && echo from-stage > /data/value

FROM busybox
RUN echo one > /a && mkdir /d && echo two > /d/b && ln -s /a /link
RUN rm /a && rm -rf /d && mkdir /d && echo three > /d/c
RUN --mount=type=bind,from=data,source=/data,target=/mnt cp /mnt/value /copied
`;

  async function layerSet(options: Partial<BuildOptions>): Promise<string[]> {
    const ctx = await context(dockerfile);
    const { result } = await run(ctx, { ...options, noCache: true, sourceDateEpoch: 1 });
    const out: string[] = [];
    for (const [i, l] of result.image.manifest.layers.entries()) {
      for await (const { entry, body } of readLayerTar(store.blobs.createReadStream(l.digest))) {
        body.resume();
        out.push(`${i} ${entry.type} ${entry.path} ${entry.mode.toString(8)} ${entry.uid}:${entry.gid} ${entry.linkname ?? ""}`);
      }
    }
    return out;
  }

  it("the copy driver and the runc executor produce exactly the overlay driver's layers", async () => {
    const overlay = await layerSet({ rootfsDriver: "overlay" });
    expect(overlay.some((l) => l.includes(" copied "))).toBe(true);
    expect(overlay.some((l) => l.includes(".wh..wh..opq"))).toBe(true);
    expect(await layerSet({ rootfsDriver: "copy" })).toEqual(overlay);
    requireTool("runc");
    expect(await layerSet({ rootfsDriver: "overlay", executor: "runc" })).toEqual(overlay);
  });
});

describe("identical layers", () => {
  it("stacks a layer that appears twice (two identical empty RUNs) without refusing the overlay", async () => {
    const ctx = await context(`${PRELUDE}RUN true\nRUN true\nRUN echo after > /after\n`);
    const { result } = await run(ctx);
    const diffIds = result.image.config.rootfs.diff_ids;
    expect(new Set(diffIds).size).toBeLessThan(diffIds.length);
    const paths = (await Promise.all(result.image.manifest.layers.map((l) => layerPaths(l.digest)))).flat();
    expect(paths).toContain("after");
  });
});
