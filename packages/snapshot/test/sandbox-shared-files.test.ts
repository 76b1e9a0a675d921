import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRootfs, runInSandbox, type SandboxSpec } from "@kiln/snapshot";

// Runs share the read-only files of a sandbox (/etc files, the mount-point placeholder lower) by content.
// Real namespaces and overlayfs: needs root and busybox-static, like sandbox.test.ts.
let scratch: string;
let base: string;
let n = 0;
const shared = path.join(os.tmpdir(), `kiln-sandbox-${process.getuid?.() ?? 0}`);

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), "kiln-shared-test-"));
  base = path.join(scratch, "base");
  mkdirSync(path.join(base, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", path.join(base, "bin/busybox"));
  for (const a of ["sh", "cat", "echo", "ls", "touch", "stat"]) symlinkSync("busybox", path.join(base, "bin", a));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function run(script: string, extra: Partial<SandboxSpec> = {}): Promise<{ exitCode: number; out: string; diff: string[] }> {
  const r = await createRootfs({ driver: "overlay", lowerDirs: [base], dir: path.join(scratch, `r${n++}`) });
  let out = "";
  const res = await runInSandbox({
    ...r.sandbox,
    args: ["/bin/sh", "-c", script],
    env: ["PATH=/bin"],
    cwd: "/",
    user: { uid: 0, gid: 0 },
    network: "none",
    stdout: (c) => (out += c.toString()),
    stderr: (c) => (out += c.toString()),
    ...extra,
  });
  const diff = (await r.diff()).map((e) => e.path);
  await r.dispose();
  return { exitCode: res.exitCode, out, diff };
}

/** The shared /etc directories holding this hostname (other processes may add entries of their own). */
function etcDirsFor(hostname: string): string[] {
  if (!existsSync(shared)) return [];
  return readdirSync(shared)
    .filter((e) => e.startsWith("etc-") && !e.includes(".tmp-"))
    .filter((e) => {
      try {
        return readFileSync(path.join(shared, e, "hostname"), "utf8") === `${hostname}\n`;
      } catch {
        return false;
      }
    });
}

// Hostnames unique to this process: the shared directory outlives test runs, and an earlier run on the same
// machine (with, say, another resolv.conf) may have left an entry for the same hostname.
const B = `shared-b-${process.pid}`;
const C = `shared-c-${process.pid}`;

describe("shared sandbox files", () => {
  it("is private to the user", async () => {
    await run("true", { hostname: "shared-a" });
    const st = statSync(shared);
    expect(st.uid).toBe(process.getuid?.());
    expect(st.mode & 0o777).toBe(0o700);
  });

  it("reuses one /etc directory for runs with the same content, and a new one when it differs", async () => {
    const first = await run("cat /etc/hostname", { hostname: B });
    const dirs = etcDirsFor(B);
    expect(dirs.length).toBe(1);
    const second = await run("cat /etc/hostname", { hostname: B });
    expect(etcDirsFor(B)).toEqual(dirs);
    expect(first.out).toBe(`${B}\n`);
    expect(second.out).toBe(`${B}\n`);
    const other = await run("cat /etc/hostname; cat /etc/hosts", { hostname: C, extraHosts: [{ host: "db", ip: "10.0.0.9" }] });
    expect(other.out).toContain(`${C}\n`);
    expect(other.out).toContain("10.0.0.9\tdb");
    expect(etcDirsFor(C).length).toBe(1);
  });

  it("keeps nothing for a run with a random hostname", async () => {
    const a = await run("cat /etc/hostname");
    const b = await run("cat /etc/hostname");
    expect(a.out).toMatch(/^[0-9a-f]{12}\n$/);
    expect(b.out).not.toBe(a.out);
    expect(etcDirsFor(a.out.trim())).toEqual([]);
    expect(etcDirsFor(b.out.trim())).toEqual([]);
  });

  it("a run cannot change the shared files, and they never reach the layer", async () => {
    const w = await run("echo x > /etc/hosts; echo y > /etc/resolv.conf; echo z > /etc/hostname; echo done", { hostname: "shared-d" });
    expect(w.out).toContain("done");
    const r = await run("cat /etc/hosts /etc/hostname", { hostname: "shared-d" });
    expect(r.out).not.toContain("x\n");
    expect(r.out).toContain("shared-d\n");
    expect(r.diff).toEqual([]);
  });

  it("a placeholder lower per set of mount points: each run sees only its own mount points", async () => {
    const src = path.join(scratch, "src");
    mkdirSync(src, { recursive: true });
    const withMount = await run("ls -d /mnt/data && touch /mnt/data/f", {
      hostname: "shared-e",
      mounts: [{ type: "bind", source: src, target: "/mnt/data" }],
    });
    expect(withMount.exitCode).toBe(0);
    expect(existsSync(path.join(src, "f"))).toBe(true);
    expect(withMount.diff).toEqual([]);
    const without = await run("ls -d /mnt/data", { hostname: "shared-e" });
    expect(without.exitCode).not.toBe(0);
  });

  it("re-creates a shared entry when something removed it", async () => {
    await run("true", { hostname: "shared-f" });
    const [dir] = etcDirsFor("shared-f");
    expect(dir).toBeDefined();
    // Only this test's entry: other processes may be using the rest right now.
    rmSync(path.join(shared, dir!), { recursive: true, force: true });
    const again = await run("cat /etc/hostname; ls -d /proc/1", { hostname: "shared-f" });
    expect(again.exitCode).toBe(0);
    expect(again.out).toBe("shared-f\n/proc/1\n");
    expect(etcDirsFor("shared-f")).toEqual([dir]);
  });
});
