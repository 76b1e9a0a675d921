/** Scenario 4: a large build context (20,000 files, ~200 MB) copied with `COPY . .` — cold, warm, one file changed. */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { ensureTree, type GeneratedTree } from "../fixtures/file-tree.js";
import type { PreparedScenario, Scenario, ScenarioEnv } from "./types.js";

const TAG = "kiln-bench/large-context:latest";
// Unique across bench runs: a revision text BuildKit (or kiln) saw in an earlier run would be a cache hit.
const runId = `${Date.now().toString(36)}-${process.pid}`;
let revision = 0;

async function prepareLarge(env: ScenarioEnv): Promise<{ tree: GeneratedTree; dockerfile: string }> {
  const root = path.join(env.workDir, "fixtures/large");
  const tree = await ensureTree(path.join(root, "context"), { label: "large-context", files: 20_000, dirs: 200, totalBytes: 200 * 1024 * 1024 });
  // The Dockerfile lives outside the context so it is not one of the copied files.
  const dockerfile = path.join(root, "Dockerfile");
  await writeFile(dockerfile, `FROM ${env.bases.busybox}\nWORKDIR /src\nCOPY . .\n`);
  return { tree, dockerfile };
}

const facts = (t: GeneratedTree): string => `context: ${t.files.toLocaleString("en-US")} files, ${(t.bytes / 1048576).toFixed(0)} MiB (half source-like text, half incompressible binary)`;

function scenario(id: string, title: string, what: string, before: (tree: GeneratedTree) => PreparedScenario["before"]): Scenario {
  return {
    id,
    title,
    what,
    plan: (c) => c,
    async prepare(env) {
      const { tree, dockerfile } = await prepareLarge(env);
      const b = before(tree);
      return { request: { context: tree.dir, dockerfile, tag: TAG }, facts: facts(tree), ...(b ? { before: b } : {}) };
    },
  };
}

export const largeCold = scenario("large-cold", "4a. Large context, cold", "Build cache empty before every run (busybox base present): `COPY . .` of the whole tree.", () => (tool) => tool.resetCache());

export const largeWarm = scenario("large-warm", "4b. Large context, warm (nothing changed)", "The same build again: the context must still be checked for changes.", () => undefined);

export const largeTouch = scenario("large-touch", "4c. Large context, one file changed", "One 1 KiB file rewritten before every run: `COPY . .` reruns.", (tree) => async () => {
  await writeFile(path.join(tree.dir, "pkg0000/f000000.js"), `// revision ${runId}-${++revision}\n`.padEnd(1024, "x"));
});
