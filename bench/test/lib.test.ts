import { mkdtemp, readFile, rm, writeFile, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { median, min, pairedRatio } from "../lib/stats.js";
import { timed, treeRss } from "../lib/measure.js";
import { summariseProfile } from "../lib/cpuprofile.js";
import { ensureTree } from "../fixtures/file-tree.js";
import { BenchError } from "../lib/errors.js";

const tmp = await mkdtemp(path.join(os.tmpdir(), "kiln-bench-test-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe("stats", () => {
  it("median and min of odd, even and empty samples", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    expect(min([3, 1, 2])).toBe(1);
  });
  it("paired ratio skips failed runs and takes the median of a[i]/b[i]", () => {
    expect(pairedRatio([2, undefined, 9, 4], [1, 5, 3, 4])).toBe(2);
  });
});

describe("process tree RSS", () => {
  it("sums a process and its descendants only", () => {
    const table = [
      { pid: 1, ppid: 0, rss: 100 },
      { pid: 10, ppid: 1, rss: 10 },
      { pid: 11, ppid: 10, rss: 1 },
      { pid: 20, ppid: 1, rss: 1000 },
    ];
    expect(treeRss(table, 10)).toBe(11);
    expect(treeRss(table, 1)).toBe(1111);
  });
  it("times a real child and samples its tree", async () => {
    // sh forks a child that holds ~64 MiB: the sampled tree peak must include it.
    const run = await timed("sh", ["-c", "head -c 67108864 /dev/zero | tail -c 1 >/dev/null; sleep 0.3"], { sampleMs: 20 });
    expect(run.ms).toBeGreaterThan(0);
    expect(run.peakTreeRss).toBeGreaterThan(1024 * 1024);
  });
  it("reports a failing command with its output", async () => {
    await expect(timed("sh", ["-c", "echo boom >&2; exit 3"])).rejects.toThrow(BenchError);
    await expect(timed("sh", ["-c", "echo boom >&2; exit 3"])).rejects.toThrow(/exit 3[\s\S]*boom/);
  });
});

describe("generated contexts", () => {
  it("are identical byte for byte across generations", async () => {
    const spec = { label: "t", files: 40, dirs: 4, totalBytes: 40 * 1000 };
    const a = await ensureTree(path.join(tmp, "a"), spec);
    const b = await ensureTree(path.join(tmp, "b"), spec);
    expect(a.bytes).toBe(b.bytes);
    const dirs = await readdir(a.dir);
    expect(dirs).toHaveLength(4);
    for (const d of dirs) {
      for (const f of await readdir(path.join(a.dir, d))) {
        expect((await readFile(path.join(a.dir, d, f))).equals(await readFile(path.join(b.dir, d, f)))).toBe(true);
      }
    }
  });
});

describe("cpu profile summary", () => {
  it("ranks self time of a real node --cpu-prof run", async () => {
    const script = path.join(tmp, "busy.mjs");
    await writeFile(script, "import { createHash } from 'node:crypto';\nfunction spin(){ let h = createHash('sha256'); for (let i = 0; i < 200000; i++) h.update('x'.repeat(64)); return h.digest('hex'); }\nspin();\n");
    const dir = path.join(tmp, "prof");
    await new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir", dir, script], { stdio: "ignore" });
      c.on("error", reject);
      c.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
    });
    const file = (await readdir(dir)).find((f) => f.endsWith(".cpuprofile"))!;
    const s = await summariseProfile(path.join(dir, file), 10);
    expect(s.totalMs).toBeGreaterThan(0);
    expect(s.functions.length).toBeGreaterThan(0);
    const shares = s.functions.reduce((acc, f) => acc + f.share, 0);
    expect(shares).toBeLessThanOrEqual(1.0001);
    expect(s.functions.some((f) => /spin|update|repeat/.test(f.name))).toBe(true);
  });
});

describe("timeouts", () => {
  it("kills a hung command and says so", async () => {
    await expect(timed("sleep", ["30"], { timeoutMs: 300 })).rejects.toThrow(/hung: killed after/);
  });
});
