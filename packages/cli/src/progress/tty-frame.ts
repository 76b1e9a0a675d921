// Lays out one frame of the tty view as BuildKit does:
//   [+] Building 12.3s (8/10)
//  => CACHED [base 2/3] COPY go.mod ./                                0.0s
//  => [build 3/5] RUN make                                            4.1s
//  => => # cc -o app main.c
// Every line is clipped to the terminal width so nothing wraps (a wrapped line would break cursor-up redraws).
import type { BuildView, StepView } from "./tty-state.js";
import { clip, formatBytes, formatSeconds, justify } from "./tty-text.js";

export interface FrameOptions {
  /** Terminal columns; lines are at most columns - 1 cells so the cursor never sits in the wrap column. */
  columns: number;
  /** Terminal rows; a live frame stays below this so every line it drew can still be reached to redraw. */
  rows: number;
  now: number;
  /** The last frame: no height limit, no log tails except for failed steps. */
  final: boolean;
  explain: boolean;
}

const LIVE_LOG_LINES = 6;
const ERROR_LOG_LINES = 10;

const BLUE = "\x1b[34m";
const RED = "\x1b[31m";
const DIM = "\x1b[90m";
const RESET = "\x1b[0m";

const paint = (color: string | undefined, text: string): string => (color && text ? `${color}${text}${RESET}` : text);

export function composeFrame(view: BuildView, o: FrameOptions): string[] {
  const width = Math.max(10, o.columns - 1);
  const { done, total } = view.counts();
  const state = !o.final ? "" : view.outcome === "finished" ? " FINISHED" : view.outcome === "error" ? " ERROR" : " CANCELED";
  const header = clip(`[+] Building ${formatSeconds(view.elapsed(o.now))} (${done}/${total})${state}`, width);
  const headerColor = o.final ? (view.outcome === "finished" ? BLUE : RED) : undefined;

  const block = (s: StepView, logLines: number): string[] => stepLines(view, s, o, width, logLines);
  let blocks: string[][];
  if (o.final) {
    blocks = view.steps.map((s) => block(s, s.status === "error" ? ERROR_LOG_LINES : 0));
  } else {
    blocks = fitLive(view, o.rows - 2, o.explain, block);
  }
  return [paint(headerColor, header), ...blocks.flat()];
}

/**
 * The live frame must fit the screen: first hide finished steps (oldest first), then shorten the log tails
 * of running steps, and only then drop the oldest running steps. Heights are counted, not rendered.
 */
function fitLive(view: BuildView, budget: number, explain: boolean, block: (s: StepView, logLines: number) => string[]): string[][] {
  const height = (s: StepView, logs: number) => 1 + (explain && s.miss && s.status === "done" ? 1 : 0) + view.tail(s, logs).length;
  const sum = (list: StepView[], logs: number) => list.reduce((n, s) => n + height(s, logs), 0);
  let logs = LIVE_LOG_LINES;
  let steps = view.steps;
  let total = sum(steps, logs);
  if (total > budget) {
    const kept: StepView[] = [];
    for (const s of steps) {
      if (total > budget && s.status !== "running") total -= height(s, logs);
      else kept.push(s);
    }
    steps = kept;
  }
  while (total > budget && logs > 0) total = sum(steps, --logs);
  while (total > budget && steps.length > 0) {
    total -= height(steps[0]!, logs);
    steps = steps.slice(1);
  }
  return steps.map((s) => block(s, logs));
}

function stepLines(view: BuildView, s: StepView, o: FrameOptions, width: number, logLines: number): string[] {
  // A step still running in the final frame never finished: the build was stopped under it.
  const canceled = o.final && s.status === "running";
  const prefix = s.status === "cached" ? " => CACHED " : s.status === "error" ? " => ERROR " : canceled ? " => CANCELED " : " => ";
  const elapsed = s.durationMs ?? o.now - s.startedAt;
  const right = [s.progress ? progressText(s.progress) : "", formatSeconds(elapsed)].filter(Boolean).join(" ");
  const color = s.status === "error" || canceled ? RED : s.status === "running" ? undefined : BLUE;
  const lines = [paint(color, justify(`${prefix}${s.label}`, right, width))];
  if (o.explain && s.miss && s.status === "done") lines.push(paint(BLUE, clip(` => => cache miss: ${s.miss}`, width)));
  const logColor = s.status === "error" ? RED : DIM;
  for (const log of view.tail(s, logLines)) lines.push(paint(logColor, clip(` => => # ${log}`, width)));
  return lines;
}

function progressText(p: { current: number; total?: number | undefined; unit: "bytes" | "files" }): string {
  if (p.unit === "bytes") return p.total === undefined ? formatBytes(p.current) : `${formatBytes(p.current)} / ${formatBytes(p.total)}`;
  return p.total === undefined ? `${p.current} files` : `${p.current}/${p.total} files`;
}
