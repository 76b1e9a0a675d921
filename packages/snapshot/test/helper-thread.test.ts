// The helper thread: one worker per process for diffID hashing (and the walk snapshot's lstats), adopted from
// an early start when there was one, never keeping the process alive on its own.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { HELPER_SLOT, prestartHelperThread } from "../src/util/helper-bootstrap.js";
import { helperThread, runningHelperThread, stopHelperThreadForTests } from "../src/util/helper-thread.js";
import { workerDiffHasher } from "../src/layer/diff-hasher.js";

const exec = promisify(execFile);
afterAll(async () => {
  await stopHelperThreadForTests();
});

describe("helper thread", () => {
  it("adopts the prestarted worker and hashes files and bytes in order, several jobs interleaved", async () => {
    await stopHelperThreadForTests();
    prestartHelperThread();
    const slot = Symbol.for(HELPER_SLOT);
    const prestarted = (globalThis as Record<symbol, unknown>)[slot];
    expect(prestarted).toBeDefined();
    const thread = helperThread();
    expect((globalThis as Record<symbol, unknown>)[slot]).toBeUndefined(); // taken, not left for another
    expect(runningHelperThread()).toBe(thread);

    const dir = await mkdtemp(join(tmpdir(), "kiln-helper-"));
    try {
      const a = Buffer.alloc(700_000, 1);
      const b = Buffer.from("tail bytes");
      await writeFile(join(dir, "a"), Buffer.concat([a, Buffer.from("not hashed")]));
      const one = workerDiffHasher();
      const two = workerDiffHasher();
      one.addFile(join(dir, "a"), a.length);
      two.addBytes(b);
      one.addBytes(b);
      two.addFile(join(dir, "a"), a.length);
      const [d1, d2] = await Promise.all([one.digest(), two.digest()]);
      expect(d1).toBe(`sha256:${createHash("sha256").update(a).update(b).digest("hex")}`);
      expect(d2).toBe(`sha256:${createHash("sha256").update(b).update(a).digest("hex")}`);
      const bad = workerDiffHasher();
      bad.addFile(join(dir, "missing"), 10);
      await expect(bad.digest()).rejects.toThrow(/missing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("lets a process exit while the helper thread idles, and waits for a digest it asked for", async () => {
    const dist = new URL("../dist/util/", import.meta.url).pathname;
    const script = `
      const { helperThread } = await import(${JSON.stringify(`${dist}helper-thread.js`)});
      const { workerDiffHasher } = await import(${JSON.stringify(new URL("../dist/layer/diff-hasher.js", import.meta.url).pathname)});
      helperThread();
      const h = workerDiffHasher();
      h.addBytes(Buffer.from("x"));
      console.log(await h.digest());
    `;
    const started = Date.now();
    const { stdout } = await exec(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000 });
    expect(stdout.trim()).toBe(`sha256:${createHash("sha256").update("x").digest("hex")}`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
