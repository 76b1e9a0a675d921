/**
 * BuildKit as shipped in dockerd (`DOCKER_BUILDKIT=1 docker build --network host`), building into the
 * daemon's image store. A cold reset removes the built tags and prunes the whole build cache; the base
 * images stay in the image store.
 */
import { dockerClient } from "../../test/support/tools.js";
import { ensureDockerd } from "../../test/support/services.js";
import { exec } from "../lib/exec.js";
import { timed, type TimedRun } from "../lib/measure.js";
import type { Builder, BuildRequest, CommandLine } from "./types.js";

export class BuildKitBuilder implements Builder {
  readonly name = "buildkit" as const;
  private env: NodeJS.ProcessEnv = process.env;
  /** dockerd's pid: BuildKit runs inside it, so its RSS growth is BuildKit's memory. */
  daemonPid: number | undefined;
  private readonly tags = new Set<string>();

  async prepare(baseImages: readonly string[]): Promise<void> {
    const info = await ensureDockerd();
    this.daemonPid = info.pid;
    this.env = { ...process.env, DOCKER_HOST: info.dockerHost, DOCKER_BUILDKIT: "1", DOCKER_CLI_HINTS: "false" };
    for (const ref of baseImages) await exec(dockerClient(), ["pull", "-q", ref], { env: this.env });
    await this.resetCache();
  }

  async resetCache(): Promise<void> {
    if (this.tags.size > 0) await exec(dockerClient(), ["rmi", "-f", ...this.tags], { env: this.env, allowFailure: true });
    await exec(dockerClient(), ["builder", "prune", "-af"], { env: this.env });
  }

  command(req: BuildRequest): CommandLine {
    const args = ["build", "--network", "host", "-q", "-t", req.tag];
    if (req.dockerfile) args.push("-f", req.dockerfile);
    if (req.noCache) args.push("--no-cache");
    for (const s of req.secrets ?? []) args.push("--secret", `id=${s.id},src=${s.src}`);
    args.push(req.context);
    return { cmd: dockerClient(), args, env: this.env };
  }

  build(req: BuildRequest): Promise<TimedRun> {
    this.tags.add(req.tag);
    const c = this.command(req);
    const sampling = req.sampleMs ? { sampleMs: req.sampleMs, ...(this.daemonPid !== undefined ? { daemonPid: this.daemonPid } : {}) } : {};
    return timed(c.cmd, c.args, { env: c.env, ...sampling });
  }

  async version(): Promise<string> {
    const v = await exec(dockerClient(), ["version", "--format", "{{.Client.Version}}/{{.Server.Version}}"], { env: this.env, allowFailure: true });
    return `docker client/daemon ${v.trim()} (BuildKit builtin)`;
  }
}
