/**
 * Runs one scenario for every tool, interleaved (A B A B: iteration i of each tool back to back), so
 * machine drift hits all tools alike and the per-iteration pairs can be compared directly.
 */
import type { Builder, ToolName } from "../builders/types.js";
import type { RunCounts, Scenario, ScenarioEnv } from "../scenarios/types.js";
import type { TimedRun } from "./measure.js";

export interface ToolResult {
  tool: ToolName;
  /** Counted runs, by iteration (undefined where the tool failed). */
  samples: (TimedRun | undefined)[];
  /** The first failure's message. */
  error?: string;
}

export interface ScenarioResult {
  scenario: Scenario;
  counts: RunCounts;
  facts?: string;
  tools: ToolResult[];
  wallSeconds: number;
}

export async function runScenario(scenario: Scenario, builders: readonly Builder[], env: ScenarioEnv, counts: RunCounts, log: (line: string) => void): Promise<ScenarioResult> {
  const started = Date.now();
  const plan = scenario.plan(counts, env);
  const prepared = await scenario.prepare(env);
  const results = builders.map((b): ToolResult => ({ tool: b.name, samples: [] }));
  // A tool that failed twice in a row sits out the rest of the scenario (a one-off failure, say a dist
  // rebuilt under its feet, does not cost the whole scenario).
  const streak = builders.map(() => 0);
  const total = plan.warmups + plan.runs;
  for (let it = 0; it < total; it++) {
    const counted = it >= plan.warmups;
    for (const [i, builder] of builders.entries()) {
      const res = results[i]!;
      const countedIndex = it - plan.warmups;
      const capped = builder.maxRuns !== undefined && (!counted || countedIndex >= builder.maxRuns);
      if (builder.skips?.has(scenario.id) || capped) continue;
      if (streak[i]! >= 2) {
        if (counted) res.samples.push(undefined);
        continue;
      }
      try {
        await prepared.before?.(builder, it);
        const run = await builder.build(prepared.request);
        if (counted) res.samples.push(run);
        streak[i] = 0;
        const mem = run.peakTreeRss !== undefined ? `, peak RSS ${(run.peakTreeRss / 1048576).toFixed(0)} MiB` : "";
        log(`  ${scenario.id} ${builder.name} ${counted ? `run ${it - plan.warmups + 1}/${plan.runs}` : "warm-up"}: ${(run.ms / 1000).toFixed(2)} s${mem}`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        res.error ??= message;
        streak[i]!++;
        if (counted) res.samples.push(undefined);
        log(`  ${scenario.id} ${builder.name} FAILED: ${message.split("\n").slice(0, 6).join("\n    ")}`);
      }
    }
  }
  const result: ScenarioResult = { scenario, counts: plan, tools: results, wallSeconds: (Date.now() - started) / 1000 };
  if (prepared.facts) result.facts = prepared.facts;
  return result;
}
