import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRootfs,
  runInSandbox,
  sandboxResolvConf,
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
    // runc (so BuildKit) adds HOME when the spec has none: the user's home in /etc/passwd, else "/".
    expect(out.split("\0").filter(Boolean)).toEqual(["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "Z=1=2", "HOME=/"]);
  });

  it("takes HOME from the image's /etc/passwd when the environment has none", async () => {
    const img = path.join(scratch, "passwd-img");
    mkdirSync(path.join(img, "etc"), { recursive: true });
    writeFileSync(path.join(img, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
    const r = await createRootfs({ driver: "overlay", lowerDirs: [img, base], dir: path.join(scratch, `r${n++}`) });
    expect((await sh("echo $HOME", { user: { uid: 1000, gid: 1000 } }, r)).out).toBe("/home/app\n");
    expect((await sh("echo $HOME", { env: ["PATH=/bin", "HOME=/given"] }, r)).out).toBe("/given\n");
    expect((await sh("echo $HOME", { user: { uid: 4242, gid: 4242 } }, r)).out).toBe("/\n");
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
    // Without additional gids the supplementary list is empty (not [gid]), as runc sets it.
    const plain = await sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status", { user: { uid: 1000, gid: 1001 } });
    expect(plain.out.replace(/[ \t]+/g, " ").trim().split("\n")).toEqual([
      "Uid: 1000 1000 1000 1000",
      "Gid: 1001 1001 1001 1001",
      "Groups:",
    ]);
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
        "ls -l /dev/ptmx | grep -c 'pts/ptmx'; test -d /dev/shm && grep -q ' /dev/mqueue mqueue' /proc/mounts && echo shm; touch /sys/x 2>/dev/null || echo sys-ro; " +
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
    const { rootfs, out } = await sh(
      "for f in hosts hostname resolv.conf; do echo hi >> /etc/$f 2>/dev/null || echo ro-$f; done; " +
        "ls /proc /dev /sys >/dev/null; echo x > /x",
    );
    expect(out).toBe("ro-hosts\nro-hostname\nro-resolv.conf\n");
    expect((await rootfs.diff()).map((e) => e.path)).toEqual(["x"]);
  });

  it("resolves a mount point behind an absolute symlink inside the rootfs and removes the stub it created", async () => {
    const img = path.join(scratch, "symlinked-etc");
    mkdirSync(path.join(img, "etc"), { recursive: true });
    symlinkSync("/run/systemd/resolve/stub-resolv.conf", path.join(img, "etc/resolv.conf"));
    const r = await createRootfs({ driver: "overlay", lowerDirs: [img, base], dir: path.join(scratch, `r${n++}`) });
    const { out } = await sh("grep -c nameserver /run/systemd/resolve/stub-resolv.conf; echo x > /x", {}, r);
    expect(Number(out.trim())).toBeGreaterThan(0);
    expect((await r.diff()).map((e) => e.path)).toEqual(["x"]);
  });

  it("works for a non-root caller through a user namespace (overlay with userxattr)", () => {
    // Run a tiny kiln program as "nobody": the sandbox maps it to root in a new user namespace.
    chmodSync(scratch, 0o755);
    const home = path.join(scratch, "nobody");
    mkdirSync(home);
    chownSync(home, 65534, 65534);
    const src = new URL("../src/index.ts", import.meta.url).pathname;
    const script = path.join(home, "run.mts");
    writeFileSync(
      script,
      `import { createRootfs, runInSandbox } from ${JSON.stringify(src)};
const r = await createRootfs({ driver: "auto", lowerDirs: [${JSON.stringify(base)}], dir: ${JSON.stringify(path.join(home, "rootfs"))} });
let out = "";
const res = await runInSandbox({ ...r.sandbox, args: ["/bin/sh", "-c", "id -u; echo hi > /f; rm -rf /dir-that-is-new; mkdir /d"],
  env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 }, network: "none", stdout: (c) => (out += c) });
const diff = await r.diff();
console.log(JSON.stringify({ driver: r.driver, res, out, diff: diff.map((e) => e.type + ":" + e.path), uid: process.getuid() }));
`,
    );
    const tsx = new URL("../../../node_modules/.bin/tsx", import.meta.url).pathname;
    const stdout = execFileSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", tsx, script], {
      env: { PATH: process.env.PATH, HOME: home, TMPDIR: home },
      encoding: "utf8",
    });
    const got = JSON.parse(stdout.trim().split("\n").pop() ?? "{}");
    expect(got).toEqual({
      driver: "overlay",
      res: { exitCode: 0 },
      out: "0\n",
      diff: ["dir:d", "file:f"],
      uid: 65534,
    });
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

describe("sandboxResolvConf", () => {
  const host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\nsearch example.com\n";
  it("keeps the host's file for host networking", () => {
    expect(sandboxResolvConf(host, "host")).toBe(host);
  });
  it("drops loopback resolvers in a private network namespace, falling back to public ones", () => {
    expect(sandboxResolvConf(host, "none")).toBe("# generated\nnameserver 10.0.0.2\noptions edns0\nsearch example.com\n");
    expect(sandboxResolvConf("nameserver 127.0.0.53\n", "none")).toBe("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  });
});

describe("runc executor", () => {
  const probe =
    "id -u; id -g; id -G; hostname; pwd; cat /etc/hosts; echo $$; ls /dev | sort | tr '\\n' ' '; echo; " +
    "grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; ls /sys/class/net; grep -E '^Cap(Bnd|Eff)' /proc/self/status; " +
    "cat /proc/self/environ | tr '\\0' ' '; echo; ls /proc/kcore /sys/firmware 2>&1 | wc -l; exit 7";

  it("runs a command with the same observable environment as the embedded launcher", async () => {
    const results: Array<{ exitCode: number; out: string; diff: string[] }> = [];
    for (const executor of ["embedded", "runc"] as const) {
      const { exitCode, out, rootfs } = await sh(probe, {
        executor,
        cwd: "/work",
        hostname: "probe",
        env: ["PATH=/bin", "X=1 2"],
        user: { uid: 1000, gid: 1000, additionalGids: [27] },
        network: "none",
      });
      results.push({ exitCode, out, diff: (await rootfs.diff()).map((e) => e.path) });
    }
    expect(results[0]?.exitCode).toBe(7);
    expect(results[0]?.diff).toEqual(["work"]);
    expect(results[1]).toEqual(results[0]);
  });

  it("abort kills the container and leaves no mount", async () => {
    const r = await freshRootfs();
    const ac = new AbortController();
    const marker = String(50000 + Math.floor(Math.random() * 40000));
    const p = runInSandbox({
      ...r.sandbox,
      executor: "runc",
      args: ["/bin/sh", "-c", `sleep ${marker} & sleep ${marker}; wait`],
      env: ["PATH=/bin"],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      network: "none",
      signal: ac.signal,
    });
    for (let i = 0; i < 100 && findProcs(`sleep\0${marker}\0`).length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    expect(findProcs(`sleep\0${marker}\0`).length).toBe(2);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(SandboxAbortedError);
    expect(findProcs(`sleep\0${marker}\0`)).toEqual([]);
    expect(hostMountsMention(scratch)).toEqual([]);
  });
});
