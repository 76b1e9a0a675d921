// Helpers for engine tests: a throwaway context directory and store, and a build that collects events.
import { mkdtemp, mkdir, writeFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build, openStore, type BuildEvent, type BuildOptions, type BuildResult, type KilnStore } from "@kiln/core";

export interface Fixture {
  dir: string;
  context: string;
  store: KilnStore;
  write(rel: string, content: string | Buffer, mode?: number): Promise<void>;
  build(options?: Partial<BuildOptions>): Promise<{ result: BuildResult; events: BuildEvent[] }>;
  cleanup(): Promise<void>;
}

export async function makeFixture(files: Record<string, string> = {}): Promise<Fixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-engine-"));
  const context = path.join(dir, "ctx");
  await mkdir(context);
  const store = await openStore(path.join(dir, "store"));
  const write = async (rel: string, content: string | Buffer, mode?: number) => {
    const abs = path.join(context, rel);
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, content, mode !== undefined ? { mode } : {});
  };
  for (const [rel, content] of Object.entries(files)) await write(rel, content);
  return {
    dir,
    context,
    store,
    write,
    async build(options = {}) {
      const run = build({ context, store, ...options });
      const events: BuildEvent[] = [];
      run.onEvent((e) => events.push(e));
      const result = await run.result;
      return { result, events };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** step-end events by instruction text. */
export function stepEnds(events: BuildEvent[]): Extract<BuildEvent, { type: "step-end" }>[] {
  return events.filter((e): e is Extract<BuildEvent, { type: "step-end" }> => e.type === "step-end");
}
