/** Scenarios 1–3: the seeds' Node app — cold build, warm rebuild, rebuild after a source edit. */
import path from "node:path";
import { writeNodeApp } from "../fixtures/node-app.js";
import type { Scenario, ScenarioEnv } from "./types.js";

const TAG = "kiln-bench/node-app:latest";
// Unique across bench runs, so no builder meets a source text it cached in an earlier run.
const runId = `${Date.now().toString(36)}-${process.pid}`;
let revision = 0;

async function app(env: ScenarioEnv) {
  return writeNodeApp(path.join(env.workDir, "fixtures/node-app"), env.bases.node);
}

const same = (c: { runs: number; warmups: number }) => c;

export const nodeCold: Scenario = {
  id: "node-cold",
  title: "1. Node app, cold build",
  what: "debian-node base present, build cache empty before every run: COPY package.json, `npm install` (4 deps, 75 packages from the npm registry), COPY sources.",
  plan: same,
  async prepare(env) {
    const fx = await app(env);
    return {
      request: { context: fx.dir, tag: TAG, secrets: env.secrets },
      before: (tool) => tool.resetCache(),
    };
  },
};

export const nodeWarm: Scenario = {
  id: "node-warm",
  title: "2. Node app, warm rebuild (nothing changed)",
  what: "The same build again: every step is a cache hit.",
  plan: same,
  async prepare(env) {
    const fx = await app(env);
    return { request: { context: fx.dir, tag: TAG, secrets: env.secrets } };
  },
};

export const nodeTouch: Scenario = {
  id: "node-touch",
  title: "3. Node app, one source file changed",
  what: "src/routes/hello.js edited before every run: the npm install layer stays cached, the final COPY reruns.",
  plan: same,
  async prepare(env) {
    const fx = await app(env);
    return {
      request: { context: fx.dir, tag: TAG, secrets: env.secrets },
      before: () => fx.touch(`${runId}-${++revision}`),
    };
  },
};
