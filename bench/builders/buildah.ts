/**
 * Buildah (`buildah build --layers --isolation chroot`, vfs storage so it runs anywhere as root), into
 * its own storage root under the bench work dir. A cold reset removes every image but the bases.
 */
import path from "node:path";
import { requireTool } from "../../test/support/tools.js";
import { exec } from "../lib/exec.js";
import { timed, type TimedRun } from "../lib/measure.js";
import type { Builder, BuildRequest, CommandLine } from "./types.js";

export class BuildahBuilder implements Builder {
  readonly name = "buildah" as const;
  readonly maxRuns: number | undefined;
  readonly skips: ReadonlySet<string>;
  private readonly globalArgs: string[];
  private baseIds = new Set<string>();

  /** vfs copies the whole rootfs per layer: run.ts gives it one run per scenario and skips the slowest. */
  constructor(workDir: string, opts: { maxRuns?: number; skips?: readonly string[] } = {}) {
    this.maxRuns = opts.maxRuns;
    this.skips = new Set(opts.skips ?? []);
    this.globalArgs = ["--root", path.join(workDir, "buildah/root"), "--runroot", path.join(workDir, "buildah/run"), "--storage-driver", "vfs"];
  }

  private get bin(): string {
    return requireTool("buildah");
  }

  private run(args: readonly string[], allowFailure = false): Promise<string> {
    return exec(this.bin, [...this.globalArgs, ...args], { allowFailure });
  }

  async prepare(baseImages: readonly string[]): Promise<void> {
    for (const ref of baseImages) {
      const id = (await this.run(["pull", "--tls-verify=false", "-q", ref])).trim();
      this.baseIds.add(id);
    }
    await this.resetCache();
  }

  async resetCache(): Promise<void> {
    await this.run(["rm", "--all"], true);
    const ids = (await this.run(["images", "-a", "-q", "--no-trunc"])).split("\n").map((s) => s.trim().replace(/^sha256:/, "")).filter(Boolean);
    const drop = [...new Set(ids)].filter((id) => ![...this.baseIds].some((b) => b.replace(/^sha256:/, "") === id));
    if (drop.length > 0) await this.run(["rmi", "-f", ...drop], true);
  }

  command(req: BuildRequest): CommandLine {
    const args = [...this.globalArgs, "build", "--isolation", "chroot", "--layers", "--network", "host", "-q", "-t", req.tag];
    args.push("-f", req.dockerfile ?? path.join(req.context, "Dockerfile"));
    if (req.noCache) args.push("--no-cache");
    for (const s of req.secrets ?? []) args.push("--secret", `id=${s.id},src=${s.src}`);
    args.push(req.context);
    return { cmd: this.bin, args, env: process.env };
  }

  build(req: BuildRequest): Promise<TimedRun> {
    const c = this.command(req);
    return timed(c.cmd, c.args, { env: c.env, ...(req.sampleMs ? { sampleMs: req.sampleMs } : {}) });
  }

  async version(): Promise<string> {
    return (await this.run(["--version"], true)).trim();
  }
}
