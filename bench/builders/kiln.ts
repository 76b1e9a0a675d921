/**
 * kiln through its CLI (node packages/cli/dist/main.js, no pnpm in between), building into a store dir.
 * Base images are pulled into a template store once and unpacked there (as BuildKit keeps its base image
 * extracted); a cold reset replaces the working store by a copy of the template (hard links for the
 * immutable blobs and unpacked layers, so the reset costs no I/O and is not timed anyway).
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { exec } from "../lib/exec.js";
import { timed, type TimedRun } from "../lib/measure.js";
import type { Builder, BuildRequest, CommandLine } from "./types.js";

/** Store entries never modified in place (content-addressed): safe to share by hard link. */
const IMMUTABLE = new Set(["blobs", "layers"]);

export class KilnBuilder implements Builder {
  readonly name = "kiln" as const;
  readonly store: string;
  readonly template: string;

  constructor(
    private readonly repoRoot: string,
    workDir: string,
  ) {
    this.store = path.join(workDir, "kiln-store");
    this.template = path.join(workDir, "kiln-template");
  }

  get cli(): string {
    return path.join(this.repoRoot, "packages/cli/dist/main.js");
  }

  async prepare(baseImages: readonly string[]): Promise<void> {
    const head = (await exec("git", ["-C", this.repoRoot, "rev-parse", "HEAD"], { allowFailure: true })).trim();
    const key = JSON.stringify({ baseImages, head });
    const marker = `${this.template}.key`;
    if ((await readFile(marker, "utf8").catch(() => "")) !== key) {
      await rm(marker, { force: true });
      await rm(this.template, { recursive: true, force: true });
      await mkdir(this.template, { recursive: true });
      // The registry client is kiln's own (same code a FROM pull would run), used as a library here.
      const core = await import("../../packages/core/dist/index.js");
      const store = await core.openStore(this.template);
      for (const ref of baseImages) {
        const img = await core.pullImage(ref, store.blobs);
        await store.tags.set(core.formatReference(core.parseReference(ref)), img.manifestDescriptor);
        // Unpack the base's layers now: BuildKit's base image is extracted already, too.
        const dir = path.join(this.template, "..", "kiln-unpack");
        await mkdir(dir, { recursive: true });
        await writeFile(path.join(dir, "Dockerfile"), `FROM ${ref}\nRUN true\n`);
        await exec(process.execPath, [this.cli, "build", "--store", this.template, "--progress", "quiet", dir]);
        await rm(dir, { recursive: true, force: true });
      }
      await writeFile(marker, key);
    }
    await this.resetCache();
  }

  async resetCache(): Promise<void> {
    await rm(this.store, { recursive: true, force: true });
    await mkdir(this.store, { recursive: true });
    for (const entry of await readdir(this.template)) {
      const from = path.join(this.template, entry);
      await exec("cp", [IMMUTABLE.has(entry) ? "-al" : "-a", from, path.join(this.store, entry)]);
    }
  }

  command(req: BuildRequest): CommandLine {
    const args = [this.cli, "build", "--store", this.store, "--progress", "quiet", "-t", req.tag];
    if (req.dockerfile) args.push("-f", req.dockerfile);
    if (req.noCache) args.push("--no-cache");
    for (const s of req.secrets ?? []) args.push("--secret", `id=${s.id},src=${s.src}`);
    args.push(req.context);
    return { cmd: process.execPath, args, env: kilnEnv() };
  }

  build(req: BuildRequest): Promise<TimedRun> {
    const c = this.command(req);
    return timed(c.cmd, c.args, { env: c.env, ...(req.sampleMs ? { sampleMs: req.sampleMs } : {}) });
  }

  async version(): Promise<string> {
    const head = (await exec("git", ["-C", this.repoRoot, "rev-parse", "--short", "HEAD"], { allowFailure: true })).trim();
    const dirty = (await exec("git", ["-C", this.repoRoot, "status", "--porcelain", "--untracked-files=no"], { allowFailure: true })).trim();
    return `kiln ${head || "unknown"}${dirty ? " + uncommitted changes" : ""} (node ${process.version})`;
  }
}

/**
 * The environment kiln runs in. NODE_EXTRA_CA_CERTS is dropped: Node parses that bundle at every process
 * start (~40 ms here, before any kiln code), it only matters for TLS with a private CA, and the benchmark's
 * registry is plain HTTP on 127.0.0.1 (the npm CA reaches RUN steps as a secret, not through Node). The docker
 * CLI, a Go program, never reads it, so keeping it would time an environment variable, not the builders.
 */
export function kilnEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _dropped, ...rest } = env;
  return rest;
}
