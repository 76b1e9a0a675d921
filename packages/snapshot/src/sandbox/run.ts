import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { overlayMountData } from "../rootfs/overlay-options.js";
import { randomHostname, hostsFile, readHostResolvConf, sandboxResolvConf } from "./etc-files.js";
import { SandboxAbortedError, SandboxExecError, SandboxSetupError, SandboxUnsupportedError } from "./errors.js";
import { LAUNCHER_PERL } from "./launcher-script.js";
import { buildPlan, syscallArg, syscallNumbers } from "./plan.js";
import { runWithRunc } from "./runc.js";
import { createStubLower, removeStubs } from "./stubs.js";
import type { SandboxMount, SandboxResult, SandboxSpec } from "./types.js";

const TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

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
  const runtime = await mkdtemp(path.join(os.tmpdir(), "kiln-run-"));
  try {
    const files = {
      hosts: path.join(runtime, "hosts"),
      hostname: path.join(runtime, "hostname"),
      resolvConf: path.join(runtime, "resolv.conf"),
    };
    await Promise.all([
      writeFile(files.hosts, hostsFile(hostname, spec.extraHosts), { mode: 0o644 }),
      writeFile(files.hostname, hostname + "\n", { mode: 0o644 }),
      writeFile(files.resolvConf, sandboxResolvConf(await readHostResolvConf(), spec.network), { mode: 0o644 }),
    ]);
    const sourceIsDir = memoIsDir();
    if (spec.executor === "runc") return await runWithRunc(spec, { runtime, hostname, files, sourceIsDir });
    let overlay: { data: string; cwd: string } | undefined;
    if (spec.overlay) {
      const stubs = path.join(runtime, "stubs");
      await createStubLower(stubs, spec.mounts ?? [], sourceIsDir);
      overlay = overlayMountData(
        { ...spec.overlay, lowerDirs: [...spec.overlay.lowerDirs, stubs] },
        { userxattr: userns, linkDir: path.join(runtime, "lowers") },
      );
    }
    const plan = buildPlan({ spec, hostname, files, overlay, userns, sourceIsDir });
    spec.signal?.throwIfAborted();
    const outcome = await launch(spec, plan, userns);
    // Placeholders the launcher created in the writable tree (only where the stub lower could not help,
    // e.g. a mount target behind a symlink, or the copy driver).
    await removeStubs(spec.overlay ? spec.overlay.upperDir : spec.rootfs, outcome.stubs);
    if (outcome.aborted) throw new SandboxAbortedError("sandbox run aborted", { cause: spec.signal?.reason });
    if (outcome.setupError !== undefined) throw new SandboxSetupError(`sandbox setup failed: ${outcome.setupError}`);
    if (outcome.execError !== undefined) throw new SandboxExecError(outcome.execError);
    return outcome.result;
  } finally {
    await rm(runtime, { recursive: true, force: true });
  }
}

interface LaunchOutcome {
  result: SandboxResult;
  stubs: string[];
  setupError?: string;
  execError?: string;
  aborted: boolean;
}

function unshareArgs(spec: SandboxSpec, userns: boolean): string[] {
  // No --fork: the launcher forks pid 1 itself so it can report the command's real wait status.
  const a = ["--mount", "--uts", "--ipc", "--pid", "--propagation", "private"];
  if (spec.network === "none") a.push("--net");
  if (userns) a.push("--user", "--map-root-user");
  return a;
}

function launch(spec: SandboxSpec, plan: string[], userns: boolean): Promise<LaunchOutcome> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      const perl = ["perl", "-e", LAUNCHER_PERL, syscallArg(syscallNumbers())];
      child = spawn("unshare", [...unshareArgs(spec, userns), "--", ...perl], {
        stdio: ["pipe", "pipe", "pipe", "pipe"],
        env: { PATH: TOOL_PATH, LC_ALL: "C" },
      });
    } catch (err) {
      reject(new SandboxUnsupportedError(`cannot start unshare: ${(err as Error).message}`, { cause: err }));
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
          ? new SandboxUnsupportedError("unshare (util-linux) is not installed", { cause: err })
          : new SandboxSetupError(`cannot start sandbox: ${err.message}`, { cause: err }),
      );
    });
    child.on("close", (code, signal) => {
      spec.signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      const out: LaunchOutcome = { result: { exitCode: 0 }, stubs: [], aborted };
      let began = false;
      let wait: number | undefined;
      const fields = Buffer.concat(status).toString("utf8").split("\0");
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const [kind, value] = [fields[i], fields[i + 1] ?? ""];
        if (kind === "B") began = true;
        else if (kind === "S") out.stubs.push(value);
        else if (kind === "W") wait = Number(value);
        else if (kind === "E") out.setupError = value;
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
    // unshare already gone
  }
  for (const c of children) {
    try {
      process.kill(Number(c), "SIGKILL");
    } catch {
      // already dead
    }
  }
}

function explainUnshareFailure(userns: boolean, stderr: string): string {
  const why = stderr ? ` (${stderr})` : "";
  return userns
    ? `could not create the namespaces${why}; a non-root build needs unprivileged user namespaces ` +
        "(kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, no AppArmor userns restriction)"
    : `could not create the namespaces or start perl${why}`;
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
