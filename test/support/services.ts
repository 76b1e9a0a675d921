/**
 * Real services for tests: a private dockerd (with its builtin BuildKit) and Debian's docker-registry.
 * Every ensure* call is idempotent and safe to call concurrently from several vitest workers: it reuses a
 * service left running by an earlier call or run (pid file + health probe) and serialises start-up with
 * a file lock. Services are started detached; test/support/global-setup.ts stops what a run started.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { readPid, startDaemon, stopPid } from "./daemon.js";
import { ServiceError } from "./errors.js";
import { basicAuth, probe } from "./http.js";
import { withLock } from "./lock.js";
import { dataDir, dockerHost, dockerSocketPath, stateDir } from "./paths.js";
import { isAlive, waitFor } from "./process.js";
import { requireTool } from "./tools.js";

export { requireTool } from "./tools.js";

export interface DockerdInfo {
  /** Value for DOCKER_HOST, e.g. unix:///run/kiln-test/docker.sock */
  dockerHost: string;
  socketPath: string;
  dataRoot: string;
  pid: number;
}

export interface RegistryInfo {
  /** host:port to use in image references, e.g. 127.0.0.1:5000 */
  host: string;
  /** Base URL, e.g. http://127.0.0.1:5000 */
  url: string;
  /** Credentials when started with auth: "htpasswd". */
  credentials?: { username: string; password: string };
  pid: number | undefined;
}

export interface EnsureOptions {
  signal?: AbortSignal;
}

/** The user known to the htpasswd registry (127.0.0.1:5001). */
export const TEST_REGISTRY_USER = { username: "kiln", password: "kiln-test-password" } as const;
// bcrypt (cost 5, the registry accepts only bcrypt) of TEST_REGISTRY_USER.password, generated once with
// python3 -c 'import crypt; print(crypt.crypt("kiln-test-password", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))'
// A wrong hash cannot go unnoticed: test/services.test.ts logs in with the password above.
const TEST_REGISTRY_HTPASSWD = "kiln:$2b$05$PKPSCPbUhKL0g4pk8P1n6umuJZ71A6zn1fPkesghRRn.EtIFlsgGO\n";

const REGISTRY_PORT = 5000;
const REGISTRY_AUTH_PORT = 5001;

const dockerdPidFile = (): string => path.join(stateDir(), "docker.pid");
const registryPidFile = (port: number): string => path.join(stateDir(), `registry-${port}.pid`);

async function dockerdAnswers(): Promise<boolean> {
  const res = await probe({ socketPath: dockerSocketPath(), path: "/_ping", timeoutMs: 2000 });
  return res?.status === 200;
}

/**
 * Deal with a pid file whose dockerd does not answer: a daemon still starting gets some time, a hung
 * one is stopped, and a pid reused by an unrelated process (after a reboot) is forgotten — dockerd
 * itself refuses to start while its pid file names a live process.
 */
async function clearStaleDockerd(): Promise<number | undefined> {
  const pid = await readPid(dockerdPidFile());
  if (pid === undefined) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (isAlive(pid) && cmdline.includes("dockerd") && cmdline.includes(dockerSocketPath())) {
    if (await waitFor(dockerdAnswers, 30_000)) return pid;
    await stopPid(pid);
  }
  await rm(dockerdPidFile(), { force: true });
  return undefined;
}

/** Start (or reuse) the test dockerd. */
export async function ensureDockerd(opts: EnsureOptions = {}): Promise<DockerdInfo> {
  const dataRoot = path.join(dataDir(), "docker");
  const info = (pid: number): DockerdInfo => ({
    dockerHost: dockerHost(),
    socketPath: dockerSocketPath(),
    dataRoot,
    pid,
  });
  const running = async (): Promise<number | undefined> => {
    const pid = await readPid(dockerdPidFile());
    return pid !== undefined && isAlive(pid) && (await dockerdAnswers()) ? pid : undefined;
  };
  const fast = await running();
  if (fast !== undefined) return info(fast);

  return withLock(
    "dockerd",
    async () => {
      const again = (await running()) ?? (await clearStaleDockerd());
      if (again !== undefined) return info(again);
      const dockerd = requireTool("dockerd");
      // dockerd starts its own containerd and runc; fail here with the package name rather than later.
      requireTool("containerd");
      requireTool("runc");
      await mkdir(stateDir(), { recursive: true });
      await mkdir(dataRoot, { recursive: true });
      // An empty config file keeps a developer's /etc/docker/daemon.json out of the tests.
      const configFile = path.join(stateDir(), "daemon.json");
      await writeFile(configFile, "{}\n");
      const args = [
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--config-file",
        configFile,
        "--data-root",
        dataRoot,
        "--exec-root",
        path.join(stateDir(), "exec"),
        "--pidfile",
        dockerdPidFile(),
        "--host",
        dockerHost(),
        // If a system containerd is running, dockerd attaches to it: keep our objects apart from its users.
        "--containerd-namespace",
        "kiln-test",
        "--containerd-plugins-namespace",
        "kiln-test-plugins",
        "--log-level",
        "warn",
      ];
      // Let dockerd pick the storage driver (overlay2 where the kernel allows, else vfs) unless told.
      const driver = process.env.KILN_TEST_STORAGE_DRIVER;
      if (driver) args.push("--storage-driver", driver);
      const env = { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/local/sbin:/usr/sbin:/sbin` };
      await rm(dockerSocketPath(), { force: true });
      const pid = await startDaemon({
        service: "dockerd",
        cmd: dockerd,
        args,
        env,
        logFile: path.join(dataDir(), "dockerd.log"),
        ready: dockerdAnswers,
        readyTimeoutMs: 90_000,
        signal: opts.signal,
      });
      return info((await readPid(dockerdPidFile())) ?? pid);
    },
    { signal: opts.signal },
  );
}

async function registryAnswers(port: number, auth: boolean): Promise<boolean> {
  const url = `http://127.0.0.1:${port}/v2/`;
  if (!auth) return (await probe({ url, timeoutMs: 2000 }))?.status === 200;
  const anon = await probe({ url, timeoutMs: 2000 });
  if (anon?.status !== 401) return false;
  const authed = await probe({
    url,
    timeoutMs: 2000,
    headers: { authorization: basicAuth(TEST_REGISTRY_USER.username, TEST_REGISTRY_USER.password) },
  });
  return authed?.status === 200;
}

function registryConfig(port: number, htpasswdFile: string | undefined): string {
  // Both registries share one storage dir so base images pushed to :5000 are visible on :5001 too.
  const storage = path.join(dataDir(), "registry");
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(storage)}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    "  headers:",
    "    X-Content-Type-Options: [nosniff]",
  ];
  if (htpasswdFile) {
    lines.push("auth:", "  htpasswd:", "    realm: kiln-test", `    path: ${JSON.stringify(htpasswdFile)}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Start (or reuse) Debian's docker-registry: plain HTTP on 127.0.0.1:5000, or with
 * `auth: "htpasswd"` on 127.0.0.1:5001 accepting TEST_REGISTRY_USER.
 */
export async function ensureRegistry(opts: EnsureOptions & { auth?: "htpasswd" } = {}): Promise<RegistryInfo> {
  const auth = opts.auth === "htpasswd";
  const port = auth ? REGISTRY_AUTH_PORT : REGISTRY_PORT;
  const info = async (): Promise<RegistryInfo> => ({
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    ...(auth ? { credentials: { ...TEST_REGISTRY_USER } } : {}),
    pid: await readPid(registryPidFile(port)),
  });
  if (await registryAnswers(port, auth)) return info();
  return withLock(
    `registry-${port}`,
    async () => {
      if (await registryAnswers(port, auth)) return info();
      const registry = requireTool("docker-registry");
      await mkdir(stateDir(), { recursive: true });
      await mkdir(path.join(dataDir(), "registry"), { recursive: true });
      let htpasswd: string | undefined;
      if (auth) {
        htpasswd = path.join(stateDir(), "registry.htpasswd");
        await writeFile(htpasswd, TEST_REGISTRY_HTPASSWD);
      }
      const configFile = path.join(stateDir(), `registry-${port}.yml`);
      await writeFile(configFile, registryConfig(port, htpasswd));
      const pid = await startDaemon({
        service: `docker-registry :${port}`,
        cmd: registry,
        args: ["serve", configFile],
        logFile: path.join(dataDir(), `registry-${port}.log`),
        ready: () => registryAnswers(port, auth),
        readyTimeoutMs: 30_000,
        signal: opts.signal,
      });
      await writeFile(registryPidFile(port), String(pid));
      return info();
    },
    { signal: opts.signal },
  );
}

export type ServiceName = "dockerd" | "registry" | "registry-auth";

/** Pids of the services this module started that are alive now (services started elsewhere are not listed). */
export async function runningServices(): Promise<Partial<Record<ServiceName, number>>> {
  const out: Partial<Record<ServiceName, number>> = {};
  const files: Record<ServiceName, string> = {
    dockerd: dockerdPidFile(),
    registry: registryPidFile(REGISTRY_PORT),
    "registry-auth": registryPidFile(REGISTRY_AUTH_PORT),
  };
  for (const [name, file] of Object.entries(files) as [ServiceName, string][]) {
    const pid = await readPid(file);
    if (pid !== undefined && isAlive(pid)) out[name] = pid;
  }
  return out;
}

/** Stop the named services (by their recorded pid) and forget their pid files. */
export async function stopServices(names: readonly ServiceName[]): Promise<void> {
  const running = await runningServices();
  await Promise.all(
    names.map(async (name) => {
      const pid = running[name];
      if (pid === undefined) return;
      const lockName = name === "dockerd" ? "dockerd" : `registry-${name === "registry" ? REGISTRY_PORT : REGISTRY_AUTH_PORT}`;
      await withLock(lockName, async () => {
        await stopPid(pid);
        if (name !== "dockerd") {
          await rm(registryPidFile(name === "registry" ? REGISTRY_PORT : REGISTRY_AUTH_PORT), { force: true });
        }
      });
      if (name === "dockerd" && (await dockerdAnswers())) {
        throw new ServiceError("dockerd", `still answering on ${dockerSocketPath()} after stopping pid ${pid}`);
      }
    }),
  );
}
