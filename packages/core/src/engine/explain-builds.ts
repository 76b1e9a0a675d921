// `kiln cache explain`: what changed, step by step, between the last two builds of a Dockerfile.
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { CacheKeyInputs } from "@kiln/cache";
import { parseDockerfile } from "../dockerfile/parser.js";
import { modelFromAst } from "../dockerfile/stages.js";
import type { Digest } from "../image/oci.js";
import { hostPlatform, parsePlatform } from "../image/oci.js";
import { buildIdentity, selectTarget } from "./build.js";
import { describeMiss, type MissReason } from "./events.js";
import { explainMiss } from "./explain.js";
import { openStore, type KilnStore } from "./store.js";

export interface ExplainBuildsOptions {
  context: string;
  dockerfile?: string;
  target?: string;
  platform?: string;
  store?: string | KilnStore;
}

export interface StepComparison {
  /** "<stage>:<index>" */
  id: string;
  instruction: string;
  /** "same" when both builds had the same key; otherwise why the newer one differs. */
  change: "same" | "added" | MissReason;
}

export interface BuildComparison {
  newer?: string;
  older?: string;
  steps: StepComparison[];
}

async function recordInputs(store: KilnStore, key: Digest): Promise<{ inputs?: CacheKeyInputs; files?: Record<string, string> }> {
  const record = await store.cache.get(key);
  if (!record) return {};
  const filesIndex = record.inputs.filesIndex as Digest | undefined;
  const files = filesIndex ? await store.blobs.readJson<Record<string, string>>(filesIndex).catch(() => undefined) : undefined;
  return files ? { inputs: record.inputs, files } : { inputs: record.inputs };
}

/** Compares the two most recent builds of the same context, Dockerfile, target and platform. */
export async function compareLastBuilds(options: ExplainBuildsOptions): Promise<BuildComparison> {
  const contextDir = path.resolve(options.context);
  const dockerfilePath = path.resolve(options.dockerfile ?? path.join(contextDir, "Dockerfile"));
  const file = path.basename(dockerfilePath);
  const model = modelFromAst(parseDockerfile(await readFile(dockerfilePath, "utf8"), { file }), { file });
  const target = selectTarget(model, options.target, file);
  const platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
  const store = typeof options.store === "object" ? options.store : await openStore(options.store);
  const builds = await store.history.builds(buildIdentity(contextDir, dockerfilePath, target, platform));
  const [newer, older] = builds;
  if (!newer) return { steps: [] };
  const parse = (description: string) => {
    const space = description.indexOf(" ");
    return { id: space < 0 ? description : description.slice(0, space), instruction: space < 0 ? "" : description.slice(space + 1) };
  };
  const olderById = new Map((older?.steps ?? []).map((s) => [parse(s.description).id, s.key]));
  const steps: StepComparison[] = [];
  // Once a step differs, later ones differ because of it; say so instead of repeating the cause.
  let changedBefore = false;
  for (const step of newer.steps) {
    const { id, instruction } = parse(step.description);
    const oldKey = olderById.get(id);
    if (oldKey === step.key) {
      steps.push({ id, instruction, change: "same" });
      continue;
    }
    if (oldKey === undefined) {
      steps.push({ id, instruction, change: older ? "added" : "same" });
      continue;
    }
    if (changedBefore && !id.endsWith(":1")) {
      steps.push({ id, instruction, change: { kind: "parent-changed" } });
      continue;
    }
    const [now, before] = await Promise.all([recordInputs(store, step.key), recordInputs(store, oldKey)]);
    const change = now.inputs ? explainMiss(now.inputs, before.inputs, before.files, now.files) : ({ kind: "unknown" } as MissReason);
    steps.push({ id, instruction, change });
    changedBefore = true;
  }
  const out: BuildComparison = { steps };
  out.newer = newer.recordedAt;
  if (older) out.older = older.recordedAt;
  return out;
}

/** The comparison as text, one line per step. */
export function formatComparison(c: BuildComparison): string {
  if (c.steps.length === 0) return "No build of this Dockerfile is recorded in the store.\n";
  if (c.older === undefined) return `Only one build is recorded (${c.newer}); nothing to compare.\n`;
  const lines = [`Comparing the build of ${c.newer} with the one of ${c.older}:`];
  for (const s of c.steps) {
    const what = s.change === "same" ? "same" : s.change === "added" ? "new step" : describeMiss(s.change);
    lines.push(`  [${s.id}] ${s.instruction}: ${what}`);
  }
  return `${lines.join("\n")}\n`;
}
