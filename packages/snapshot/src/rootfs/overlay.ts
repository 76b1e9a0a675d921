import { mkdtemp, mkdir, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MountError, OverlayPathError, OverlayUnsupportedError } from "./errors.js";
import { overlayMountData } from "./overlay-options.js";
import { runTool } from "../util/run-tool.js";

const run = runTool;
const TOOL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };

export interface MountOverlayOptions {
  /** Top-most first; empty for FROM scratch (an empty lower is substituted: overlay needs one). */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
  target: string;
  signal?: AbortSignal;
}

let emptyLower: Promise<string> | undefined;

/**
 * An empty, read-only directory standing in for the lower of a FROM-scratch overlay. One per user, shared
 * by every process (so nothing accumulates); a private one if the shared one is not empty.
 */
export function emptyLowerDir(): Promise<string> {
  emptyLower ??= (async () => {
    const shared = path.join(os.tmpdir(), `kiln-empty-lower-${process.getuid?.() ?? 0}`);
    await mkdir(shared, { recursive: true, mode: 0o555 });
    if ((await readdir(shared)).length === 0) return shared;
    return mkdtemp(path.join(os.tmpdir(), "kiln-empty-lower-"));
  })();
  return emptyLower;
}

/**
 * Mounts an overlay on the host (visible to every process). The sandbox prefers mounting inside its own
 * mount namespace (SandboxSpec.overlay) so nothing can outlive it; this is for callers that need the
 * merged view outside a run. Requires root.
 */
export async function mountOverlay(o: MountOverlayOptions): Promise<void> {
  const lowerDirs = o.lowerDirs.length > 0 ? o.lowerDirs : [await emptyLowerDir()];
  const linkDir = await mkdtemp(path.join(os.tmpdir(), "kiln-lowers-"));
  try {
    const { data, cwd } = overlayMountData({ lowerDirs, upperDir: o.upperDir, workDir: o.workDir }, { linkDir });
    await Promise.all([o.upperDir, o.workDir, o.target].map((d) => mkdir(d, { recursive: true })));
    await run("mount", ["-t", "overlay", "overlay", "-o", data, o.target], { cwd, signal: o.signal, env: TOOL_ENV });
  } catch (err) {
    if (err instanceof OverlayPathError) throw err;
    throw new MountError(`overlay mount on ${o.target} failed: ${stderrOf(err)}`, { cause: err });
  } finally {
    // Symlinked lowers are resolved when mounting; the links are not needed afterwards.
    await rm(linkDir, { recursive: true, force: true });
  }
}

export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  try {
    await run("umount", [...(opts.lazy ? ["-l"] : []), target], { env: TOOL_ENV });
  } catch (err) {
    throw new MountError(`umount ${target} failed: ${stderrOf(err)}`, { cause: err });
  }
}

function stderrOf(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr || e.message || String(err)).trim();
}

export interface OverlaySupport {
  ok: boolean;
  /** Mounted from a user namespace (caller not root): overlay xattrs are user.overlay.*. */
  userxattr: boolean;
  reason?: string;
}

const probes = new Map<string, Promise<OverlaySupport>>();

/**
 * Whether an overlay with its upper dir under `scratchDir` can be mounted here: tried for real inside a
 * throw-away mount namespace (a user namespace too when not root), so the probe leaves no mount behind.
 * The answer depends on the filesystem holding the upper dir, so it is cached per device.
 */
export async function probeOverlay(scratchDir: string): Promise<OverlaySupport> {
  await mkdir(scratchDir, { recursive: true });
  const key = String((await stat(scratchDir)).dev);
  let p = probes.get(key);
  if (!p) {
    p = doProbe(scratchDir);
    probes.set(key, p);
  }
  return p;
}

async function doProbe(scratchDir: string): Promise<OverlaySupport> {
  const userxattr = process.getuid?.() !== 0;
  const dir = await mkdtemp(path.join(scratchDir, ".overlay-probe-"));
  try {
    const d = (n: string) => path.join(dir, n);
    await Promise.all(["lower", "upper", "work", "merged"].map((n) => mkdir(d(n))));
    const { data } = overlayMountData({ lowerDirs: [d("lower")], upperDir: d("upper"), workDir: d("work") }, { userxattr });
    const ns = ["--mount", "--propagation", "private", ...(userxattr ? ["--user", "--map-root-user"] : [])];
    try {
      await run("unshare", [...ns, "mount", "-t", "overlay", "overlay", "-o", data, d("merged")], { env: TOOL_ENV });
      return { ok: true, userxattr };
    } catch (err) {
      return { ok: false, userxattr, reason: stderrOf(err) };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function assertOverlaySupported(scratchDir: string): Promise<OverlaySupport> {
  const s = await probeOverlay(scratchDir);
  if (!s.ok) {
    throw new OverlayUnsupportedError(
      `overlayfs cannot be mounted with its upper dir in ${scratchDir}: ${s.reason ?? "unknown"}` +
        (s.userxattr ? " (non-root needs kernel >= 5.11 and unprivileged user namespaces)" : ""),
    );
  }
  return s;
}
