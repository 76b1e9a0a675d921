import type { Builder, BuildRequest } from "../builders/types.js";

export interface RunCounts {
  /** Counted runs per tool. */
  runs: number;
  /** Uncounted runs first (they also bring each tool's cache to the state the scenario starts from). */
  warmups: number;
}

export interface ScenarioEnv {
  workDir: string;
  bases: { busybox: string; node: string };
  /** Secrets every build gets (the host CA bundle when there is one). */
  secrets: readonly { id: string; src: string }[];
  quick: boolean;
}

export interface PreparedScenario {
  request: BuildRequest;
  /** Untimed, before each build of each tool (cache reset, a file edit...). */
  before?(tool: Builder, iteration: number): Promise<void>;
  /** Extra facts for the report (context size...). */
  facts?: string;
}

export interface Scenario {
  id: string;
  title: string;
  /** What is measured, one sentence for the report. */
  what: string;
  /** Report peak RSS instead of (as well as) time. */
  memory?: boolean;
  plan(counts: RunCounts, env: ScenarioEnv): RunCounts;
  prepare(env: ScenarioEnv): Promise<PreparedScenario>;
}
