import { bigLayer } from "./big-layer.js";
import { largeCold, largeTouch, largeWarm } from "./large-context.js";
import { nodeCold, nodeTouch, nodeWarm } from "./node-app.js";
import { runTrue, runWrite } from "./run-steps.js";
import type { Scenario } from "./types.js";

/** In run order: a warm scenario relies on the cold one before it having filled each tool's cache. */
export const SCENARIOS: readonly Scenario[] = [nodeCold, nodeWarm, nodeTouch, largeCold, largeWarm, largeTouch, runTrue, runWrite, bigLayer];
