// The kiln CLI as users run it: flags, plain progress, exit codes, errors, metadata file.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const cli = path.join(repo, "packages/cli/dist/main.js");

let work: string;
let ctx: string;

function kiln(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, KILN_STORE: path.join(work, "store") } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-cli-"));
  ctx = path.join(work, "ctx");
  await mkdir(path.join(ctx, "src"), { recursive: true });
  await writeFile(path.join(ctx, "package.json"), '{"name":"app"}\n');
  await writeFile(path.join(ctx, "src", "app.js"), "console.log(1)\n");
  await writeFile(
    path.join(ctx, "Dockerfile"),
    "FROM scratch\nARG cache_invalidator\nWORKDIR /app\nCOPY package.json ./\nCOPY src/ ./src/\nCMD [\"node\", \"src/app.js\"]\n",
  );
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("kiln CLI", () => {
  it("builds, prints plain progress and the image ID, writes metadata", async () => {
    const meta = path.join(work, "meta.json");
    const first = await kiln(["build", "-t", "app:dev", "--metadata-file", meta, "--progress", "plain", ctx]);
    expect(first.code).toBe(0);
    expect(first.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first.stderr).toContain("#4 [4/6] COPY package.json ./");
    expect(first.stderr).toContain("naming to docker.io/library/app:dev");
    const metadata = JSON.parse(await readFile(meta, "utf8"));
    expect(metadata["containerimage.config.digest"]).toBe(first.stdout.trim());
    expect(metadata["containerimage.digest"]).toMatch(/^sha256:/);
    expect(metadata["kiln.build.steps"]).toHaveLength(6);

    const second = await kiln(["build", "-t", "app:dev", "--progress", "plain", ctx]);
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr.match(/CACHED/g)).toHaveLength(6);
  });

  it("--explain says which build arg and which file changed", async () => {
    await kiln(["build", ctx]);
    const args = await kiln(["build", "--explain", "--progress", "plain", "--build-arg", "cache_invalidator=2026-11-22T0700", ctx]);
    expect(args.code).toBe(0);
    expect(args.stderr).toContain("cache miss: build arg cache_invalidator changed");
    const again = await kiln(["build", "--explain", "--progress", "plain", "--build-arg", "cache_invalidator=2026-11-22T0800", ctx]);
    expect(again.stderr).toContain("cache miss: build arg cache_invalidator changed");
    await writeFile(path.join(ctx, "src", "app.js"), "console.log(2)\n");
    const file = await kiln(["build", "--explain", "--progress", "plain", "--build-arg", "cache_invalidator=2026-11-22T0800", ctx]);
    expect(file.stderr).toContain("cache miss: files changed: src/app.js");
    expect(file.stderr).toMatch(/#4 CACHED/);
  });

  it("-q prints only the image ID; errors exit non-zero with the Dockerfile line", async () => {
    const quiet = await kiln(["build", "-q", ctx]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe("");
    expect(quiet.stdout.trim()).toMatch(/^sha256:/);

    const bad = path.join(work, "bad");
    await mkdir(bad, { recursive: true });
    await writeFile(path.join(bad, "Dockerfile"), "FROM scratch\nFORM scratch\n");
    const failed = await kiln(["build", bad]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("Dockerfile:2: unknown instruction: FORM (did you mean FROM?)");

    const usage = await kiln(["build"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('"kiln build" requires exactly 1 argument');
    expect((await kiln(["frobnicate"])).code).toBe(1);
  });

  it("builds FROM an image an earlier build tagged in the local store", async () => {
    const child = path.join(work, "child");
    await mkdir(child, { recursive: true });
    await writeFile(path.join(child, "Dockerfile"), "FROM app:dev\nENV CHILD=1\n");
    await writeFile(path.join(child, "extra.txt"), "x\n");
    const res = await kiln(["build", "-q", "--output", `type=oci,dest=${path.join(work, "child.tar")}`, child]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
  });
});

describe("kiln build --check", () => {
  it("flags the seeds' bad ordering and passes the good one", async () => {
    const dir = path.join(work, "check");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "Dockerfile"), "FROM node:20-alpine\nWORKDIR /usr/app\nCOPY ./ ./\nRUN npm install\nCMD [\"npm\", \"start\"]\n");
    const bad = await kiln(["build", "--check", dir]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("CopyAllBeforeDependencyInstall - Dockerfile:4");
    await writeFile(path.join(dir, "Dockerfile"), "FROM node:20-alpine\nWORKDIR /usr/app\nCOPY ./package.json ./\nRUN npm install\nCOPY ./ ./\nCMD [\"npm\", \"start\"]\n");
    const good = await kiln(["build", "--check", dir]);
    expect(good.stdout).toContain("Check complete, no warnings found.");
    expect(good.code).toBe(0);
  });
});

describe("kiln cache", () => {
  it("explain compares the last two builds; du, check and prune work on the store", async () => {
    const dir = path.join(work, "explain");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "Dockerfile"), "FROM scratch\nARG cache_invalidator\nCOPY a.txt /\nCOPY b.txt /\n");
    await writeFile(path.join(dir, "a.txt"), "a\n");
    await writeFile(path.join(dir, "b.txt"), "b\n");
    await kiln(["build", "--build-arg", "cache_invalidator=1", dir]);
    await kiln(["build", "--build-arg", "cache_invalidator=2", dir]);
    const explained = await kiln(["cache", "explain", dir]);
    expect(explained.code).toBe(0);
    expect(explained.stdout).toContain("ARG cache_invalidator: build arg cache_invalidator changed");
    expect(explained.stdout).toContain("COPY b.txt /: an earlier step changed");

    const du = await kiln(["cache", "du"]);
    expect(du.code).toBe(0);
    expect(du.stdout).toMatch(/COPY a\.txt/);
    const check = await kiln(["cache", "check"]);
    expect(check.code).toBe(0);
    const prune = await kiln(["cache", "prune", "--all"]);
    expect(prune.code).toBe(0);
    expect(prune.stdout).toMatch(/Deleted records: [1-9]/);
  });
});
