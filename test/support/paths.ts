/**
 * Where the test services keep their state. Everything is overridable through the environment so a
 * developer can point the services at another disk; defaults are machine-wide so that dockerd's image
 * store, the registry's blobs and the debootstrap tarball survive between test runs.
 */
import path from "node:path";

/** Runtime state: sockets, pid files, generated configs, locks (tmpfs on most machines). */
export function stateDir(): string {
  return process.env.KILN_TEST_STATE ?? "/run/kiln-test";
}

/** Persistent data: dockerd data-root, registry storage, service logs. */
export function dataDir(): string {
  return process.env.KILN_TEST_DATA ?? "/var/lib/kiln-test";
}

/** Download cache (the debootstrap rootfs tarball). */
export function cacheDir(): string {
  return process.env.KILN_TEST_CACHE ?? "/var/cache/kiln-test";
}

export const dockerSocketPath = (): string => path.join(stateDir(), "docker.sock");
export const dockerHost = (): string => `unix://${dockerSocketPath()}`;
export const lockDir = (): string => path.join(stateDir(), "locks");
