// Many builders on one store: shared steps run once, killed builds leave the store consistent, and
// pruning while a build runs is safe.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, openStore } from "@kiln/core";
import { cacheUsage, checkStore, pruneCache } from "@kiln/cache";
import { requireTool } from "./support/tools.js";

const repo = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const cli = path.join(repo, "packages/cli/dist/main.js");

let work: string;
let ctx: string;

const DOCKERFILE = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY data/ /data/
RUN head -c 2000000 /dev/urandom > /random.bin && sleep 1
RUN cat /data/* > /all.txt
`;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-concurrency-"));
  ctx = path.join(work, "ctx");
  await mkdir(path.join(ctx, "data"), { recursive: true });
  await copyFile(requireTool("busybox"), path.join(ctx, "busybox"));
  for (let i = 0; i < 50; i++) await writeFile(path.join(ctx, "data", `f${i}.txt`), `file ${i}\n`.repeat(200));
  await writeFile(path.join(ctx, "Dockerfile"), DOCKERFILE);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function kiln(args: string[], store: string): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>; kill: () => void } {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, KILN_STORE: store, SOURCE_DATE_EPOCH: "1700000000" } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { done, kill: () => child.kill("SIGKILL") };
}

describe("one store, many builders", () => {
  it("two concurrent builds of the same steps do the work once", async () => {
    const store = await openStore(path.join(work, "shared"));
    // The random bytes make any second execution of that RUN visible as a different layer.
    const [a, b] = await Promise.all([build({ context: ctx, store }).result, build({ context: ctx, store }).result]);
    expect(b.imageId).toBe(a.imageId);
    const executed = [...a.steps, ...b.steps].filter((s) => s.instruction.startsWith("RUN head") && !s.cached);
    expect(executed).toHaveLength(1);
  }, 300_000);

  it("builds killed at random moments leave a consistent store, and a rebuild gives the unkilled image", async () => {
    // Deterministic steps (SOURCE_DATE_EPOCH is set), so an unkilled build in a fresh store is the reference.
    const dockerfile = path.join(ctx, "Dockerfile.kill");
    await writeFile(dockerfile, DOCKERFILE.replace("head -c 2000000 /dev/urandom > /random.bin", "seq 1 300000 > /numbers.txt"));
    const args = ["build", "-q", "-t", "killtest", "-f", dockerfile];
    const reference = await kiln([...args, ctx], path.join(work, "reference")).done;
    expect(reference.code).toBe(0);
    // Time an unkilled --no-cache build in a fresh store: the kills must land inside that span, however fast
    // builds have become on this machine.
    const t0 = Date.now();
    expect((await kiln([...args, "--no-cache", ctx], path.join(work, "timing")).done).code).toBe(0);
    const span = Date.now() - t0;
    const storeDir = path.join(work, "killed");
    let killed = 0;
    // Keep going until enough builds really died mid-way (a kill that lands after exit does not count).
    for (let attempt = 0; attempt < 40 && killed < 8; attempt++) {
      const run = kiln([...args, "--no-cache", ctx], storeDir);
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * span * 0.8)));
      run.kill();
      if ((await run.done).signal === "SIGKILL") killed++;
    }
    expect(killed).toBe(8);
    const store = await openStore(storeDir);
    expect((await checkStore(store.blobs)).issues).toEqual([]);
    const rebuilt = await kiln([...args, ctx], storeDir).done;
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toBe(reference.stdout);
    expect((await checkStore(store.blobs)).issues).toEqual([]);
  }, 400_000);

  it("prune keeps the store under its budget, and a build running during a prune succeeds", async () => {
    const storeDir = path.join(work, "pruned");
    const store = await openStore(storeDir);
    await build({ context: ctx, store }).result;
    await writeFile(path.join(ctx, "data", "f0.txt"), "changed\n");
    const running = build({ context: ctx, store, noCache: true }).result;
    const pruned = await pruneCache(store.blobs, { keepStorage: 1_000_000 });
    const result = await running;
    expect(result.imageId).toMatch(/^sha256:/);
    expect(pruned.keptBytes).toBeLessThanOrEqual(1_000_000 + 4_200_000); // records the running build leased stay
    await pruneCache(store.blobs, { keepStorage: 1_000_000 });
    expect((await cacheUsage(store.blobs)).totalSize).toBeLessThanOrEqual(1_000_000);
    expect((await checkStore(store.blobs)).issues).toEqual([]);
  }, 300_000);
});
