import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRootfs,
  runInSandbox,
  SandboxAbortedError,
  SandboxExecError,
  type Rootfs,
  type SandboxSpec,
} from "@kiln/snapshot";

// Real namespaces, real overlayfs: these tests need root (the machine they run on is root) and busybox-static.
let scratch: string;
let base: string;
let n = 0;

function makeBusyboxRoot(dir: string): void {
  mkdirSync(path.join(dir, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", path.join(dir, "bin/busybox"));
  execFileSync("chmod", ["755", path.join(dir, "bin/busybox")]);
  const applets = execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const a of applets) if (a !== "busybox") symlinkSync("busybox", path.join(dir, "bin", a));
}

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), "kiln-sandbox-test-"));
  base = path.join(scratch, "base");
  makeBusyboxRoot(base);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function freshRootfs(): Promise<Rootfs> {
  return createRootfs({ driver: "overlay", lowerDirs: [base], dir: path.join(scratch, `r${n++}`) });
}

async function sh(
  script: string,
  extra: Partial<SandboxSpec> = {},
  rootfs?: Rootfs,
): Promise<{ exitCode: number; out: string; err: string; rootfs: Rootfs }> {
  const r = rootfs ?? (await freshRootfs());
  let out = "";
  let err = "";
  const res = await runInSandbox({
    ...r.sandbox,
    args: ["/bin/sh", "-c", script],
    env: ["PATH=/bin"],
    cwd: "/",
    user: { uid: 0, gid: 0 },
    network: "none",
    stdout: (c) => (out += c.toString()),
    stderr: (c) => (err += c.toString()),
    ...extra,
  });
  return { exitCode: res.exitCode, out, err, rootfs: r };
}

function findProcs(cmdline: string): string[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8") === cmdline;
      } catch {
        return false;
      }
    });
}

function hostMountsMention(fragment: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(fragment));
}

describe("runInSandbox", () => {
  it("returns the command's exit code", async () => {
    expect((await sh("exit 0")).exitCode).toBe(0);
    expect((await sh("exit 3")).exitCode).toBe(3);
    expect((await sh("exit 255")).exitCode).toBe(255);
  });

  it("reports a command killed by a signal with 128+n and the signal's name", async () => {
    const marker = String(10000 + Math.floor(Math.random() * 40000));
    const r = await freshRootfs();
    const p = runInSandbox({ ...r.sandbox, args: ["sleep", marker], env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 }, network: "none" });
    let pid: string[] = [];
    for (let i = 0; i < 100 && pid.length === 0; i++) {
      await new Promise((res) => setTimeout(res, 50));
      pid = findProcs(`sleep\0${marker}\0`);
    }
    // Only SIGKILL reaches the init of a pid namespace from outside when it has no handler.
    process.kill(Number(pid[0]), "SIGKILL");
    expect(await p).toEqual({ exitCode: 137, signal: "SIGKILL" });
  });

  it("streams stdout and stderr separately, as they come", async () => {
    const events: string[] = [];
    const r = await freshRootfs();
    await runInSandbox({
      ...r.sandbox,
      args: ["/bin/sh", "-c", "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three"],
      env: ["PATH=/bin"],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      network: "none",
      stdout: (c) => events.push(`out:${c.toString().trim()}`),
      stderr: (c) => events.push(`err:${c.toString().trim()}`),
    });
    expect(events).toEqual(["out:one", "err:two", "out:three"]);
  });

  it("gives the process exactly the environment it was given", async () => {
    const r = await freshRootfs();
    let out = "";
    await runInSandbox({
      ...r.sandbox,
      args: ["cat", "/proc/self/environ"],
      env: ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "Z=1=2"],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      network: "none",
      stdout: (c) => (out += c.toString()),
    });
    expect(out.split("\0").filter(Boolean)).toEqual(["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "Z=1=2"]);
  });

  it("runs in cwd, creating it when missing", async () => {
    const { out, rootfs } = await sh("pwd", { cwd: "/work/app" });
    expect(out.trim()).toBe("/work/app");
    expect((await rootfs.diff()).map((e) => e.path)).toEqual(["work", "work/app"]);
  });

  it("switches to the requested uid, gid and supplementary groups", async () => {
    const { out } = await sh("id -u; id -g; id -G; touch /tmp-owned 2>&1 || echo denied", {
      user: { uid: 1000, gid: 1001, additionalGids: [10, 20] },
    });
    expect(out.trim().split("\n").slice(0, 3)).toEqual(["1000", "1001", "1001 10 20"]);
    expect(out).toContain("denied");
  });

  it("is pid 1 of its own pid namespace, with /proc mounted", async () => {
    const { out } = await sh("echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | head -1; cat /proc/1/cmdline | tr '\\0' ' '");
    const [pid, first, cmd] = out.trim().split("\n");
    expect(pid).toBe("1");
    expect(first).toBe("1");
    expect(cmd).toContain("/bin/sh -c");
  });

  it("sets the hostname, /etc/hostname and /etc/hosts", async () => {
    const { out } = await sh("hostname; cat /etc/hostname; grep -c myhost /etc/hosts; cat /etc/hosts", {
      hostname: "myhost",
      extraHosts: [{ host: "registry.local", ip: "10.1.2.3" }],
    });
    const lines = out.split("\n");
    expect(lines.slice(0, 3)).toEqual(["myhost", "myhost", "1"]);
    expect(out).toMatch(/^10\.1\.2\.3\tregistry\.local$/m);
    const dflt = await sh("hostname");
    expect(dflt.out.trim()).toMatch(/^[0-9a-f]{12}$/);
  });

  it("provides a working minimal /dev and a read-only /sys", async () => {
    const { out } = await sh(
      "echo x > /dev/null && wc -c < /dev/null; head -c 4 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c; " +
        "ls -l /dev/ptmx | grep -c 'pts/ptmx'; test -d /dev/shm && echo shm; touch /sys/x 2>/dev/null || echo sys-ro; " +
        "grep ' /sys ' /proc/mounts | grep -c ' ro,'",
    );
    expect(out.trim().split("\n").map((s) => s.trim())).toEqual(["0", "4", "8", "1", "shm", "sys-ro", "1"]);
  });

  it("with network none has only a loopback interface, and it is up", async () => {
    const { out } = await sh("ls /sys/class/net; cat /sys/class/net/lo/flags");
    const [ifaces, flags] = out.trim().split("\n");
    expect(ifaces).toBe("lo");
    expect(Number(flags) & 1).toBe(1);
  });

  it("with network host sees the host's interfaces", async () => {
    const { out } = await sh("ls /sys/class/net | wc -l", { network: "host" });
    expect(Number(out.trim())).toBe(readdirSync("/sys/class/net").length);
  });

  it("bind and tmpfs mounts work and leave nothing in the layer", async () => {
    const src = path.join(scratch, "bind-src");
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, "file"), "from host\n");
    const { out, rootfs } = await sh(
      "cat /mnt/src/file; touch /mnt/src/new 2>/dev/null || echo ro; echo t > /cache/t && cat /cache/t; echo keep > /kept",
      {
        mounts: [
          { type: "bind", source: src, target: "/mnt/src", readonly: true },
          { type: "tmpfs", target: "/cache", size: 1 << 20 },
        ],
      },
    );
    expect(out).toBe("from host\nro\nt\n");
    expect((await rootfs.diff()).map((e) => e.path)).toEqual(["kept"]);
  });

  it("keeps /etc/hosts, /etc/resolv.conf, /etc/hostname, /proc, /dev, /sys out of the diff", async () => {
    const { rootfs } = await sh("echo hi > /etc/hosts; cat /etc/resolv.conf > /dev/null; ls /proc /dev /sys >/dev/null; echo x > /x");
    expect((await rootfs.diff()).map((e) => e.path)).toEqual(["x"]);
  });

  it("reports a command that cannot be executed as SandboxExecError", async () => {
    const r = await freshRootfs();
    await expect(
      runInSandbox({ ...r.sandbox, args: ["/no/such/tool"], env: [], cwd: "/", user: { uid: 0, gid: 0 }, network: "none" }),
    ).rejects.toBeInstanceOf(SandboxExecError);
  });

  it("leaves no mount on the host after a run", async () => {
    const r = await freshRootfs();
    await sh("echo hi > /f", {}, r);
    expect(hostMountsMention(scratch)).toEqual([]);
    expect(readFileSync(path.join(r.changesDir, "f"), "utf8")).toBe("hi\n");
  });

  it("abort kills the whole process tree and leaves no mount", async () => {
    const r = await freshRootfs();
    const ac = new AbortController();
    const marker = String(50000 + Math.floor(Math.random() * 40000));
    const p = runInSandbox({
      ...r.sandbox,
      args: ["/bin/sh", "-c", `sleep ${marker} & sleep ${marker}; wait`],
      env: ["PATH=/bin"],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      network: "none",
      signal: ac.signal,
    });
    const running = () => findProcs(`sleep\0${marker}\0`);
    for (let i = 0; i < 100 && running().length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    expect(running().length).toBe(2);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(SandboxAbortedError);
    expect(running()).toEqual([]);
    expect(hostMountsMention(scratch)).toEqual([]);
  });
});
