import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { overlayMountData } from "../rootfs/overlay-options.js";
import { randomHostname, hostsFile, readHostResolvConf, sandboxResolvConf } from "./etc-files.js";
import { contentDir, writeShared } from "./shared-files.js";
import { SandboxAbortedError, SandboxExecError, SandboxSetupError, SandboxUnsupportedError } from "./errors.js";
import { LAUNCHER_PERL } from "./launcher-script.js";
import { buildPlan, syscallArg, syscallNumbers, type RunFiles } from "./plan.js";
import { runWithRunc } from "./runc.js";
import { createStubLower, removeStubs } from "./stubs.js";
import type { XattrMap } from "../rootfs/xattrs.js";
import type { SandboxMount, SandboxResult, SandboxSpec } from "./types.js";

const TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
/** perl-base's path on Debian and most distributions; else whatever PATH finds. */
const PERL = existsSync("/usr/bin/perl") ? "/usr/bin/perl" : "perl";

/**
 * Runs one command in a fresh set of namespaces (mount, pid, ipc, uts, and net for network "none") chrooted
 * into `spec.rootfs`, as `spec.user`, with exactly `spec.env`. Every mount, including the overlay when
 * `spec.overlay` is given, is made inside the private mount namespace and disappears with its last process.
 * Resolves with the command's exit status; rejects with SandboxSetupError / SandboxExecError when the
 * command could not be started, SandboxAbortedError after a cancel (the whole process tree is killed first).
 */
export async function runInSandbox(spec: SandboxSpec): Promise<SandboxResult> {
  spec.signal?.throwIfAborted();
  if (spec.executor !== "runc") syscallNumbers(); // fail early on an unsupported architecture
  const userns = process.getuid?.() !== 0;
  if (userns && (spec.user.uid !== 0 || spec.user.gid !== 0 || (spec.user.additionalGids ?? []).length > 0)) {
    throw new SandboxUnsupportedError(
      "running as a non-root user only the caller is mapped (to root) in the sandbox's user namespace; " +
        `uid ${spec.user.uid}/gid ${spec.user.gid} needs kiln to run as root`,
    );
  }
  const hostname = spec.hostname ?? randomHostname();
  const sourceIsDir = memoIsDir();
  if (spec.executor === "runc") {
    const runtime = await mkdtemp(path.join(os.tmpdir(), "kiln-run-"));
    try {
      const files = await etcFiles(spec, hostname, runtime);
      return await runWithRunc(spec, { runtime, hostname, files, sourceIsDir });
    } finally {
      await rm(runtime, { recursive: true, force: true });
    }
  }
  // Only needed when the overlay options are too long for one page (symlinks to the lowers, made on demand).
  const linkDir = path.join(os.tmpdir(), `kiln-lowers-${process.pid}-${randomBytes(6).toString("hex")}`);
  // A random hostname makes the /etc files unique to this run: they are not worth sharing then.
  const runtime = spec.hostname === undefined ? await mkdtemp(path.join(os.tmpdir(), "kiln-run-")) : undefined;
  try {
    const files = await etcFiles(spec, hostname, runtime);
    let overlay: { data: string; cwd: string } | undefined;
    if (spec.overlay) {
      const stubs = await sharedStubLower(spec.mounts ?? [], sourceIsDir);
      overlay = overlayMountData({ ...spec.overlay, lowerDirs: [...spec.overlay.lowerDirs, stubs] }, { userxattr: userns, linkDir });
    }
    const plan = buildPlan({ spec, hostname, files, overlay, userns, sourceIsDir });
    spec.signal?.throwIfAborted();
    const outcome = await launch(spec, plan, userns);
    // Placeholders the launcher created in the writable tree (only where the stub lower could not help,
    // e.g. a mount target behind a symlink, or the copy driver).
    if (outcome.stubs.length > 0) await removeStubs(spec.overlay ? spec.overlay.upperDir : spec.rootfs, outcome.stubs);
    if (outcome.aborted) throw new SandboxAbortedError("sandbox run aborted", { cause: spec.signal?.reason });
    if (outcome.setupError !== undefined) throw new SandboxSetupError(`sandbox setup failed: ${outcome.setupError}`);
    if (outcome.execError !== undefined) throw new SandboxExecError(outcome.execError);
    if (outcome.upperXattrs) spec.onUpperXattrs?.(outcome.upperXattrs);
    return outcome.result;
  } finally {
    if (spec.overlay) await rm(linkDir, { recursive: true, force: true });
    if (runtime !== undefined) await rm(runtime, { recursive: true, force: true });
  }
}

/**
 * /etc/hosts, /etc/hostname and /etc/resolv.conf for the run. They are bind-mounted read-only, so runs with
 * the same content share one copy (a RUN's hostname is fixed); `runtime` is for a per-run copy instead.
 */
async function etcFiles(spec: SandboxSpec, hostname: string, runtime?: string): Promise<RunFiles> {
  const content = {
    hosts: hostsFile(hostname, spec.extraHosts),
    hostname: hostname + "\n",
    resolvConf: sandboxResolvConf(await readHostResolvConf(), spec.network),
  };
  const fill = async (dir: string) => {
    await Promise.all([
      writeShared(path.join(dir, "hosts"), content.hosts),
      writeShared(path.join(dir, "hostname"), content.hostname),
      writeShared(path.join(dir, "resolv.conf"), content.resolvConf),
    ]);
  };
  let dir = runtime;
  if (dir === undefined) dir = await contentDir("etc", JSON.stringify(content), fill);
  else await fill(dir);
  return { hosts: path.join(dir, "hosts"), hostname: path.join(dir, "hostname"), resolvConf: path.join(dir, "resolv.conf") };
}

/** The placeholder lower (see createStubLower), shared by every run with the same mount points. */
function sharedStubLower(mounts: SandboxMount[], sourceIsDir: (m: Extract<SandboxMount, { type: "bind" }>) => boolean): Promise<string> {
  const key = JSON.stringify(mounts.map((m) => [m.target, m.type === "bind" && !sourceIsDir(m) ? "f" : "d"]));
  return contentDir("stubs", key, (dir) => createStubLower(dir, mounts, sourceIsDir));
}

interface LaunchOutcome {
  result: SandboxResult;
  stubs: string[];
  upperXattrs?: XattrMap;
  setupError?: string;
  execError?: string;
  aborted: boolean;
}

// clone(2) flags for the launcher's unshare(2).
const CLONE_NEWNS = 0x00020000;
const CLONE_NEWUTS = 0x04000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000;

/** The launcher's namespace argument, "flags:uid:gid" (uid and gid to map to root with a user namespace). */
function namespaceArg(spec: SandboxSpec, userns: boolean): string {
  let flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID;
  if (spec.network === "none") flags |= CLONE_NEWNET;
  if (!userns) return `${flags}::`;
  return `${flags | CLONE_NEWUSER}:${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
}

function launch(spec: SandboxSpec, plan: string[], userns: boolean): Promise<LaunchOutcome> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      const args = ["-e", LAUNCHER_PERL, syscallArg(syscallNumbers()), namespaceArg(spec, userns), ...(spec.overlay ? [spec.overlay.upperDir] : [])];
      child = spawn(PERL, args, {
        stdio: ["pipe", "pipe", "pipe", "pipe"],
        env: { PATH: TOOL_PATH, LC_ALL: "C" },
      });
    } catch (err) {
      reject(new SandboxUnsupportedError(`cannot start perl: ${(err as Error).message}`, { cause: err }));
      return;
    }
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      aborted = true;
      // SIGKILL the pid-namespace init (the launcher's child): the kernel then kills every process in it.
      // Repeat until the launcher has exited, in case the abort raced with its fork.
      const tick = () => {
        killNamespaceInit(child);
        killTimer = setTimeout(tick, 20);
      };
      tick();
    };
    spec.signal?.addEventListener("abort", onAbort, { once: true });

    const status: Buffer[] = [];
    const statusPipe = child.stdio[3] as Readable;
    statusPipe.on("data", (c: Buffer) => status.push(c));
    child.stdout?.on("data", (c: Buffer) => spec.stdout?.(c));
    let stderrTail = Buffer.alloc(0);
    child.stderr?.on("data", (c: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, c]).subarray(-2048);
      spec.stderr?.(c);
    });
    child.stdin?.on("error", () => {}); // the launcher may die before reading its plan (abort)
    child.stdin?.end(plan.join("\0") + "\0");

    child.on("error", (err) => {
      spec.signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      const code = (err as NodeJS.ErrnoException).code;
      reject(
        code === "ENOENT"
          ? new SandboxUnsupportedError(`${PERL} is not installed (Debian: perl-base)`, { cause: err })
          : new SandboxSetupError(`cannot start sandbox: ${err.message}`, { cause: err }),
      );
    });
    child.on("close", (code, signal) => {
      spec.signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      const out: LaunchOutcome = { result: { exitCode: 0 }, stubs: [], aborted };
      let began = false;
      let wait: number | undefined;
      // latin1: paths and xattr names are raw bytes here (decoded as UTF-8 below, like Node's fs names).
      const fields = Buffer.concat(status).toString("latin1").split("\0");
      const xattrs: XattrMap = new Map();
      let attrs: Map<string, Buffer> | undefined;
      let name = "";
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const kind = fields[i];
        const value = Buffer.from(fields[i + 1] ?? "", "latin1").toString("utf8");
        if (kind === "A" && spec.overlay) {
          attrs = new Map();
          xattrs.set(path.join(spec.overlay.upperDir, value), attrs);
        } else if (kind === "N") name = value;
        else if (kind === "V") attrs?.set(name, Buffer.from(value, "hex"));
        else if (kind === "Z") out.upperXattrs = xattrs;
        else if (kind === "B") began = true;
        else if (kind === "S") out.stubs.push(value);
        else if (kind === "W") wait = Number(value);
        else if (kind === "E") out.setupError = value;
        else if (kind === "U") out.setupError = explainUnshareFailure(userns, value);
        else if (kind === "X") out.execError = value;
      }
      out.result = wait !== undefined ? fromWaitStatus(wait) : fromExit(code, signal);
      if (!aborted && !began) out.setupError = explainUnshareFailure(userns, stderrTail.toString("utf8").trim());
      resolve(out);
    });
  });
}

function killNamespaceInit(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(/\s+/).filter(Boolean);
  } catch {
    // the launcher is gone already
  }
  for (const c of children) {
    try {
      process.kill(Number(c), "SIGKILL");
    } catch {
      // already dead
    }
  }
}

function explainUnshareFailure(userns: boolean, why: string): string {
  const detail = why ? ` (${why})` : "";
  return userns
    ? `could not create the namespaces${detail}; a non-root build needs unprivileged user namespaces ` +
        "(kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, no AppArmor userns restriction)"
    : `could not create the namespaces or start perl${detail}`;
}

function memoIsDir(): (m: Extract<SandboxMount, { type: "bind" }>) => boolean {
  const seen = new Map<string, boolean>();
  return (m) => {
    let v = seen.get(m.source);
    if (v === undefined) {
      try {
        v = statSync(m.source).isDirectory();
      } catch (err) {
        throw new SandboxSetupError(`mount source ${m.source}: ${(err as Error).message}`, { cause: err });
      }
      seen.set(m.source, v);
    }
    return v;
  };
}

function signalName(n: number): string {
  const e = Object.entries(os.constants.signals).find(([, v]) => v === n);
  return e ? e[0] : `SIG${n}`;
}

/** Decodes a POSIX wait status (perl's $?). */
function fromWaitStatus(status: number): SandboxResult {
  const sig = status & 0x7f;
  if (sig !== 0) return { exitCode: 128 + sig, signal: signalName(sig) };
  return { exitCode: (status >> 8) & 0xff };
}

function fromExit(code: number | null, signal: NodeJS.Signals | null): SandboxResult {
  if (signal) return { exitCode: 128 + (os.constants.signals[signal] ?? 0), signal };
  return { exitCode: code ?? 0 };
}
