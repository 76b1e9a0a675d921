import type { TimedRun } from "../lib/measure.js";

export type ToolName = "kiln" | "buildkit" | "buildah";

export interface BuildRequest {
  context: string;
  /** Absolute Dockerfile path (default: CONTEXT/Dockerfile). */
  dockerfile?: string;
  tag: string;
  noCache?: boolean;
  /** Build secrets (e.g. the host CA bundle for npm behind a TLS proxy): mounted, never baked in. */
  secrets?: readonly { id: string; src: string }[];
  /** Poll the process tree's RSS at this interval (ms). */
  sampleMs?: number;
}

export interface CommandLine {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** One image builder under test, building into its own local store (no export step is timed). */
export interface Builder {
  readonly name: ToolName;
  /**
   * At most this many counted runs per scenario, and no warm-ups (a slow reference tool gives one point
   * of comparison instead of blowing the time budget). Undefined: the scenario's full plan.
   */
  readonly maxRuns?: number;
  /** Scenario ids this tool sits out (too slow to be worth the minutes). */
  readonly skips?: ReadonlySet<string>;
  /** Make the base images available locally (untimed, once per bench run). */
  prepare(baseImages: readonly string[]): Promise<void>;
  /** Empty the build cache but keep the base images (untimed; "cold" runs start here). */
  resetCache(): Promise<void>;
  /** The exact command `build` times, so a profiler can run it too. */
  command(req: BuildRequest): CommandLine;
  build(req: BuildRequest): Promise<TimedRun>;
  version(): Promise<string>;
}
