/**
 * Everything the bench needs on a fresh Debian machine, idempotently: Debian packages (apt-get, as root),
 * kiln's compiled CLI, a private dockerd + the local registry (test/support/services.ts, under the bench's
 * own state dirs so a concurrent test run cannot stop them mid-benchmark) and the base images.
 */
import path from "node:path";
import { findTool } from "../../test/support/tools.js";
import { ensureBusyboxImage, ensureDebianNodeImage } from "../../test/support/base-images.js";
import { runningServices, stopServices, type ServiceName } from "../../test/support/services.js";
import { BenchError } from "./errors.js";
import { exec } from "./exec.js";

/** Tools the bench runs, with the Debian package providing each. */
const REQUIRED: ReadonlyArray<[tool: string, pkg: string]> = [
  ["dockerd", "docker.io"],
  ["containerd", "containerd"],
  ["runc", "runc"],
  ["docker-registry", "docker-registry"],
  ["busybox", "busybox-static"],
  ["debootstrap", "debootstrap"],
];

export async function ensurePackages(withBuildah: boolean, log: (s: string) => void): Promise<void> {
  const needed = [...REQUIRED, ...(withBuildah ? ([["buildah", "buildah"]] as const) : [])];
  const missing = [...new Set(needed.filter(([tool]) => !findTool(tool)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new BenchError(`missing packages (${missing.join(" ")}): run as root or apt-get install them`);
  log(`installing ${missing.join(" ")} (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await exec("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env, inherit: true }).catch(async () => {
    await exec("apt-get", ["update"], { env, inherit: true });
    await exec("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env, inherit: true });
  });
}

/** Keep the bench's dockerd and registry data apart from the test suite's (overridable). */
export function useBenchServiceDirs(): void {
  process.env.KILN_TEST_STATE ??= "/run/kiln-bench";
  process.env.KILN_TEST_DATA ??= "/var/lib/kiln-bench";
}

export async function buildKiln(repoRoot: string, log: (s: string) => void): Promise<void> {
  log("compiling kiln (tsc -b)…");
  await exec(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-b"], { cwd: repoRoot });
}

export interface BaseRefs {
  busybox: string;
  node: string;
}

export async function ensureBases(log: (s: string) => void): Promise<BaseRefs> {
  log("base images (busybox, debian-node) in the local registry…");
  return { busybox: await ensureBusyboxImage(), node: await ensureDebianNodeImage() };
}

/** Call before starting services; the returned function stops only what started in between. */
export async function serviceScope(): Promise<() => Promise<void>> {
  const before = await runningServices();
  return async () => {
    const now = await runningServices();
    const ours = (Object.keys(now) as ServiceName[]).filter((n) => now[n] !== before[n]);
    await stopServices(ours);
  };
}
