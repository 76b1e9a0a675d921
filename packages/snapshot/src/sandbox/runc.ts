import { spawn } from "node:child_process";
import { lstat, mkdir, readlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { mountOverlay, unmount } from "../rootfs/overlay.js";
import { SandboxAbortedError, SandboxExecError, SandboxSetupError, SandboxUnsupportedError } from "./errors.js";
import { containerPath, DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS, type RunFiles } from "./plan.js";
import { createStubLower, removeStubs } from "./stubs.js";
import type { SandboxMount, SandboxResult, SandboxSpec } from "./types.js";
import { runTool } from "../util/run-tool.js";

const run = runTool;
const TOOL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };

const CAP_NAMES: Record<number, string> = {
  0: "CAP_CHOWN",
  1: "CAP_DAC_OVERRIDE",
  3: "CAP_FOWNER",
  4: "CAP_FSETID",
  5: "CAP_KILL",
  6: "CAP_SETGID",
  7: "CAP_SETUID",
  8: "CAP_SETPCAP",
  10: "CAP_NET_BIND_SERVICE",
  13: "CAP_NET_RAW",
  18: "CAP_SYS_CHROOT",
  27: "CAP_MKNOD",
  29: "CAP_AUDIT_WRITE",
  31: "CAP_SETFCAP",
};

export interface RuncContext {
  runtime: string;
  hostname: string;
  files: RunFiles;
  sourceIsDir: (m: Extract<SandboxMount, { type: "bind" }>) => boolean;
}

/**
 * The same run through runc (the OCI runtime BuildKit uses): an OCI bundle with the mounts, namespaces,
 * capabilities and masked paths the embedded launcher sets up, the overlay mounted on the host for the
 * duration of the run. Root only. Slower than the embedded launcher (runc's own setup, cgroups), but it is
 * the reference implementation of the container semantics.
 */
export async function runWithRunc(spec: SandboxSpec, ctx: RuncContext): Promise<SandboxResult> {
  if (process.getuid?.() !== 0) throw new SandboxUnsupportedError("the runc executor needs root (use the embedded one)");
  const id = `kiln-${path.basename(ctx.runtime).replace(/[^A-Za-z0-9]/g, "")}`;
  let mounted = false;
  let stubs: string[] = [];
  try {
    if (spec.overlay) {
      const stubLower = path.join(ctx.runtime, "stubs");
      await createStubLower(stubLower, spec.mounts ?? [], ctx.sourceIsDir);
      await mountOverlay({ ...spec.overlay, lowerDirs: [...spec.overlay.lowerDirs, stubLower], target: spec.rootfs });
      mounted = true;
    }
    // runc creates missing mount points; remember which, to take them out again afterwards (BuildKit's way).
    stubs = await missingMountPoints(spec.rootfs, mountTargets(spec));
    const bundle = path.join(ctx.runtime, "bundle");
    await mkdir(bundle);
    await writeFile(path.join(bundle, "config.json"), JSON.stringify(ociConfig(spec, ctx)));
    return await runRunc(spec, id, bundle, path.join(ctx.runtime, "state"));
  } finally {
    if (mounted) {
      await unmount(spec.rootfs).catch(() => unmount(spec.rootfs, { lazy: true }));
    }
    await removeStubs(spec.overlay ? spec.overlay.upperDir : spec.rootfs, stubs);
  }
}

function mountTargets(spec: SandboxSpec): string[] {
  return ["/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", ...(spec.mounts ?? []).map((m) => containerPath(m.target, "mount target"))];
}

/** Container paths (mount points and their parents) that do not exist yet, resolving symlinks inside root. */
async function missingMountPoints(root: string, targets: string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const t of targets) {
    const todo = t.split("/").filter((c) => c !== "" && c !== ".");
    const done: string[] = [];
    let links = 0;
    let missing = false;
    while (todo.length > 0) {
      const c = todo.shift() as string;
      if (c === "..") {
        done.pop();
        continue;
      }
      if (!missing) {
        try {
          const st = await lstat(path.join(root, ...done, c));
          if (st.isSymbolicLink() && links++ < 40) {
            const l = await readlink(path.join(root, ...done, c));
            if (l.startsWith("/")) done.length = 0;
            todo.unshift(...l.split("/").filter((x) => x !== "" && x !== "."));
            continue;
          }
        } catch {
          missing = true;
        }
      }
      done.push(c);
      if (missing) out.add("/" + done.join("/"));
    }
  }
  return [...out];
}

function ociConfig(spec: SandboxSpec, ctx: RuncContext): unknown {
  const caps = DEFAULT_CAPS.map((c) => CAP_NAMES[c] as string);
  const mounts: Array<{ destination: string; type: string; source: string; options: string[] }> = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/etc/hosts", type: "bind", source: ctx.files.hosts, options: ["rbind", "ro"] },
    { destination: "/etc/hostname", type: "bind", source: ctx.files.hostname, options: ["rbind", "ro"] },
    { destination: "/etc/resolv.conf", type: "bind", source: ctx.files.resolvConf, options: ["rbind", "ro"] },
  ];
  for (const m of spec.mounts ?? []) {
    const destination = containerPath(m.target, "mount target");
    if (m.type === "bind") {
      mounts.push({ destination, type: "bind", source: m.source, options: ["rbind", m.readonly ? "ro" : "rw"] });
    } else {
      const options = ["nosuid", "nodev", `mode=${(m.mode ?? 0o1777).toString(8)}`];
      if (m.size !== undefined) options.push(`size=${m.size}`);
      mounts.push({ destination, type: "tmpfs", source: "tmpfs", options });
    }
  }
  const namespaces = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  if (spec.network === "none") namespaces.push({ type: "network" });
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: spec.user.uid, gid: spec.user.gid, additionalGids: spec.user.additionalGids ?? [] },
      args: spec.args,
      env: spec.env,
      cwd: containerPath(spec.cwd, "cwd"),
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: false,
    },
    root: { path: spec.rootfs, readonly: false },
    hostname: ctx.hostname,
    mounts,
    linux: {
      namespaces,
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      resources: { devices: [{ allow: false, access: "rwm" }] },
    },
  };
}

function runRunc(spec: SandboxSpec, id: string, bundle: string, state: string): Promise<SandboxResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("runc", ["--root", state, "run", "--bundle", bundle, id], {
      stdio: ["ignore", "pipe", "pipe"],
      env: TOOL_ENV,
    });
    let aborted = false;
    let stderrTail = "";
    const onAbort = () => {
      aborted = true;
      // Killing the container's init kills its pid namespace; runc run then returns and deletes it.
      run("runc", ["--root", state, "kill", id, "KILL"], { env: TOOL_ENV }).catch(() => {});
    };
    spec.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (c: Buffer) => spec.stdout?.(c));
    child.stderr.on("data", (c: Buffer) => {
      stderrTail = (stderrTail + c.toString()).slice(-2048);
      spec.stderr?.(c);
    });
    child.on("error", (err) => {
      spec.signal?.removeEventListener("abort", onAbort);
      reject(
        (err as NodeJS.ErrnoException).code === "ENOENT"
          ? new SandboxUnsupportedError("runc is not installed", { cause: err })
          : new SandboxSetupError(`cannot start runc: ${err.message}`, { cause: err }),
      );
    });
    child.on("close", (code, signal) => {
      spec.signal?.removeEventListener("abort", onAbort);
      if (aborted) {
        reject(new SandboxAbortedError("sandbox run aborted", { cause: spec.signal?.reason }));
        return;
      }
      if (signal) {
        reject(new SandboxSetupError(`runc was killed by ${signal}`));
        return;
      }
      // runc reports its own start-up failures on stderr with exit status 1 (indistinguishable by code).
      if (code === 1 && /^time=.*level=error/m.test(stderrTail)) {
        const msg = stderrTail.trim();
        reject(/unable to start container process: (exec|chdir)/.test(msg) ? new SandboxExecError(msg) : new SandboxSetupError(`runc failed: ${msg}`));
        return;
      }
      resolve({ exitCode: code ?? 0 });
    });
  });
}
