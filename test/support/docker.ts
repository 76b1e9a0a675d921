/** Drive the test dockerd's builtin BuildKit: the reference side of differential tests. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ServiceError } from "./errors.js";
import { run } from "./process.js";
import { ensureDockerd, type EnsureOptions } from "./services.js";
import { dockerClient } from "./tools.js";

export interface DockerBuildOptions {
  tag: string;
  /** Dockerfile path; relative paths are resolved against contextDir. Default contextDir/Dockerfile. */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  /** Build without BuildKit's cache (--no-cache). */
  noCache?: boolean;
  /** Further `docker build` flags, e.g. ["--secret", "id=x,src=/path"]. */
  extraArgs?: readonly string[];
  signal?: AbortSignal;
}

export interface DockerBuildResult {
  /** sha256:… config digest of the built image. */
  imageId: string;
  /** BuildKit's plain progress output, handy for failure messages. */
  log: string;
}

/** The docker CLI path and the environment pointing it at the test dockerd (started if needed). */
export async function dockerCommand(opts: EnsureOptions = {}): Promise<{ docker: string; env: NodeJS.ProcessEnv }> {
  const { dockerHost } = await ensureDockerd(opts);
  return {
    docker: dockerClient(),
    env: { ...process.env, DOCKER_HOST: dockerHost, DOCKER_BUILDKIT: "1", DOCKER_CLI_HINTS: "false" },
  };
}

/** `DOCKER_BUILDKIT=1 docker build --network host` against the test dockerd. */
export async function dockerBuild(contextDir: string, opts: DockerBuildOptions): Promise<DockerBuildResult> {
  const { docker, env } = await dockerCommand(opts);
  const tmp = await mkdtemp(path.join(os.tmpdir(), "kiln-docker-build-"));
  try {
    const iidFile = path.join(tmp, "iid");
    const args = ["build", "--network", "host", "--progress", "plain", "--iidfile", iidFile, "-t", opts.tag];
    if (opts.dockerfile) args.push("-f", path.resolve(contextDir, opts.dockerfile));
    for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
    if (opts.target) args.push("--target", opts.target);
    if (opts.noCache) args.push("--no-cache");
    args.push(...(opts.extraArgs ?? []), contextDir);
    const { stderr } = await run(docker, args, { env, signal: opts.signal });
    const imageId = (await readFile(iidFile, "utf8")).trim();
    if (!imageId.startsWith("sha256:")) throw new ServiceError("docker build", `unexpected image id "${imageId}"`);
    return { imageId, log: stderr };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `docker save` an image (tag or id) to a tar archive. */
export async function dockerSave(image: string, file: string, opts: EnsureOptions = {}): Promise<void> {
  const { docker, env } = await dockerCommand(opts);
  await run(docker, ["save", "-o", file, image], { env, signal: opts.signal });
}

/** Run a docker CLI command against the test dockerd; returns stdout. */
export async function docker(args: readonly string[], opts: EnsureOptions = {}): Promise<string> {
  const { docker: cli, env } = await dockerCommand(opts);
  return (await run(cli, args, { env, signal: opts.signal })).stdout;
}
