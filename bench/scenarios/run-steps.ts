/** Scenario 5: per-step overhead — 20 trivial RUN steps on the busybox base, built without cache. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Scenario, ScenarioEnv } from "./types.js";

async function dockerfileContext(env: ScenarioEnv, name: string, steps: string[]): Promise<string> {
  const dir = path.join(env.workDir, "fixtures", name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "Dockerfile"), [`FROM ${env.bases.busybox}`, ...steps, ""].join("\n"));
  return dir;
}

export const runTrue: Scenario = {
  id: "run20",
  title: "5. 20 × `RUN true`",
  what: "20 trivial RUN steps on busybox, `--no-cache` every run: per-step sandbox and layer overhead.",
  plan: (c) => c,
  async prepare(env) {
    const dir = await dockerfileContext(env, "run20", Array.from({ length: 20 }, () => "RUN true"));
    return { request: { context: dir, tag: "kiln-bench/run20:latest", noCache: true } };
  },
};

export const runWrite: Scenario = {
  id: "run20-write",
  title: "5b. 20 × `RUN echo N > /stepN`",
  what: "Like 5, but every step writes one small file, so no two steps produce the same (empty) layer.",
  plan: (c) => c,
  async prepare(env) {
    const dir = await dockerfileContext(env, "run20-write", Array.from({ length: 20 }, (_, i) => `RUN echo ${i} > /step${i}`));
    return { request: { context: dir, tag: "kiln-bench/run20-write:latest", noCache: true } };
  },
};
