// How each metadata instruction changes the image config, as BuildKit's dockerfile2llb does it.
// Values arrive already expanded; these functions only edit a copy of the config.
import type { ContainerConfig, HealthConfig, HistoryEntry, ImageConfig, Platform } from "../image/oci.js";

export const DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const HISTORY_COMMENT = "buildkit.dockerfile.v0";

/** The config BuildKit starts a `FROM scratch` stage with. */
export function scratchConfig(platform: Platform): ImageConfig {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: [DEFAULT_PATH_ENV], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
  if (platform.variant) config.variant = platform.variant;
  return config;
}

export function cloneConfig(config: ImageConfig): ImageConfig {
  return structuredClone(config);
}

function containerConfig(image: ImageConfig): ContainerConfig {
  return (image.config ??= {});
}

/** Sets (replacing) an environment variable, keeping the order of the others. */
export function setEnv(image: ImageConfig, key: string, value: string): void {
  const c = containerConfig(image);
  const env = (c.Env ??= []);
  const entry = `${key}=${value}`;
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i >= 0) env[i] = entry;
  else env.push(entry);
}

export function getEnv(image: ImageConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of image.config?.Env ?? []) {
    const eq = e.indexOf("=");
    if (eq < 0) out.set(e, "");
    else out.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return out;
}

/** Ensures a PATH when the base image has none (BuildKit adds the default for RUN). */
export function envWithDefaultPath(env: string[]): string[] {
  return env.some((e) => e.startsWith("PATH=")) ? env : [...env, DEFAULT_PATH_ENV];
}

export function setLabel(image: ImageConfig, key: string, value: string): void {
  (containerConfig(image).Labels ??= {})[key] = value;
}

export function setCmd(image: ImageConfig, cmd: string[]): void {
  containerConfig(image).Cmd = cmd;
}

/** ENTRYPOINT resets a CMD inherited from the base unless this stage set one already. */
export function setEntrypoint(image: ImageConfig, entrypoint: string[] | null, cmdSetInStage: boolean): void {
  const c = containerConfig(image);
  // Go omits empty slices from the JSON, so "no entrypoint" and "no cmd" are absent keys.
  if (entrypoint === null || entrypoint.length === 0) delete c.Entrypoint;
  else c.Entrypoint = entrypoint;
  if (!cmdSetInStage) delete c.Cmd;
}

export function addExposedPorts(image: ImageConfig, ports: string[]): void {
  const exposed = (containerConfig(image).ExposedPorts ??= {});
  for (const p of ports) exposed[p] = {};
}

export function addVolumes(image: ImageConfig, volumes: string[]): void {
  const v = (containerConfig(image).Volumes ??= {});
  for (const p of volumes) v[p] = {};
}

export function setUser(image: ImageConfig, user: string): void {
  containerConfig(image).User = user;
}

export function setWorkdir(image: ImageConfig, workdir: string): void {
  containerConfig(image).WorkingDir = workdir;
}

export function setStopSignal(image: ImageConfig, signal: string): void {
  containerConfig(image).StopSignal = signal;
}

export function setHealthcheck(image: ImageConfig, health: HealthConfig): void {
  containerConfig(image).Healthcheck = health;
}

export function setShell(image: ImageConfig, shell: string[]): void {
  containerConfig(image).Shell = shell;
}

export function addOnBuild(image: ImageConfig, trigger: string): void {
  const c = containerConfig(image);
  c.OnBuild = [...(c.OnBuild ?? []), trigger];
}

export function setAuthor(image: ImageConfig, author: string): void {
  image.author = author;
}

/** The shell that runs shell-form RUN/CMD/ENTRYPOINT: SHELL if set, else /bin/sh -c. */
export function shellOf(image: ImageConfig): string[] {
  const shell = image.config?.Shell;
  return shell && shell.length > 0 ? shell : ["/bin/sh", "-c"];
}

export function addHistory(image: ImageConfig, entry: { createdBy: string; emptyLayer: boolean; created?: string }): void {
  const h: HistoryEntry = { created_by: entry.createdBy, comment: HISTORY_COMMENT };
  if (entry.created !== undefined) h.created = entry.created;
  if (entry.emptyLayer) h.empty_layer = true;
  (image.history ??= []).push(h);
}

/** Resolves a WORKDIR against the current one, as BuildKit: relative paths join, result is clean. */
export function resolveWorkdir(current: string | undefined, next: string): string {
  const joined = next.startsWith("/") ? next : `${current && current !== "" ? current : "/"}/${next}`;
  return cleanPath(joined);
}

/** path.Clean for absolute POSIX paths. */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}

export class PortSpecError extends Error {
  override readonly name = "PortSpecError";
}

/** Expands `80`, `80/udp`, `8000-8002/tcp` into `80/tcp`-style keys as Docker's nat.ParsePortSpecs does. */
export function parsePorts(specs: string[]): string[] {
  const out: string[] = [];
  for (const spec of specs) {
    const [range, protoRaw, ...rest] = spec.split("/");
    if (rest.length > 0 || range === undefined || range === "") throw new PortSpecError(`invalid port: ${spec}`);
    const proto = (protoRaw ?? "tcp").toLowerCase();
    if (!["tcp", "udp", "sctp"].includes(proto)) throw new PortSpecError(`invalid proto: ${protoRaw}`);
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!m) throw new PortSpecError(`invalid containerPort: ${range}`);
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (start > 65535 || end > 65535 || end < start) throw new PortSpecError(`invalid port range: ${range}`);
    for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  }
  return out;
}
