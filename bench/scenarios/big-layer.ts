/** Scenario 6: peak memory while building a 2 GiB layer (`COPY` of 16 × 128 MiB generated files). */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { ensureBigFiles } from "../fixtures/file-tree.js";
import type { Scenario } from "./types.js";

export const bigLayer: Scenario = {
  id: "big-layer",
  title: "6. 2 GiB layer: peak memory",
  what: "`COPY . /data/` of 16 × 128 MiB incompressible files on busybox, cache empty every run; RSS summed over the CLI's process tree, sampled every 100 ms (BuildKit: the docker CLI's tree, plus dockerd's growth).",
  memory: true,
  // Each run moves 2 GiB through every tool (over a minute each): one run gives the memory peak, and
  // keeps the whole bench within its time budget.
  plan: (c) => ({ runs: Math.min(c.runs, 1), warmups: 0 }),
  async prepare(env) {
    const root = path.join(env.workDir, "fixtures/big");
    const tree = await ensureBigFiles(path.join(root, "context"), "big-layer", 16, 128 * 1024 * 1024);
    const dockerfile = path.join(root, "Dockerfile");
    await writeFile(dockerfile, `FROM ${env.bases.busybox}\nCOPY . /data/\n`);
    return {
      request: { context: tree.dir, dockerfile, tag: "kiln-bench/big-layer:latest", sampleMs: 100 },
      before: (tool) => tool.resetCache(),
      facts: `context: ${tree.files} files, ${(tree.bytes / 1073741824).toFixed(1)} GiB`,
    };
  },
};
