// What the tty progress view knows about a build, folded from BuildEvents. Pure state: no timers, no output.
import type { BuildEvent, StepRef } from "@kiln/core";
import { describeMiss } from "@kiln/core";
import { sanitizeLine } from "./tty-text.js";

export type StepStatus = "running" | "done" | "cached" | "error";

export interface StepProgress {
  current: number;
  total?: number | undefined;
  unit: "bytes" | "files";
}

export interface StepView {
  /** "[stage 2/5] RUN make" or "exporting to oci out.tar". */
  label: string;
  status: StepStatus;
  startedAt: number;
  durationMs?: number;
  /** Complete log lines, sanitized; only the last LOG_KEEP are kept. */
  logs: string[];
  /** The unterminated tail of the log so far (raw). */
  partial: string;
  progress?: StepProgress;
  /** Cache-miss reason, for --explain. */
  miss?: string;
}

export type BuildOutcome = "running" | "finished" | "error";

/** Lines kept per step: enough for the live view (6) and the error view (10). */
const LOG_KEEP = 10;
/** A partial line longer than this is shown as it is; no terminal line is wider. */
const PARTIAL_MAX = 4096;

export class BuildView {
  /** Steps in the order they started; each keeps its own line. */
  readonly steps: StepView[] = [];
  private readonly byId = new Map<string, StepView>();
  /** Latest known step count per stage (it grows when ONBUILD triggers are added). */
  private readonly stageTotals = new Map<string, number>();
  private stageCount = 1;
  private exports = 0;
  startedAt: number | undefined;
  durationMs: number | undefined;
  outcome: BuildOutcome = "running";

  apply(event: BuildEvent, now: number): void {
    this.startedAt ??= now;
    switch (event.type) {
      case "build-start":
        this.stageCount = event.stages.length;
        break;
      case "step-start":
        this.step(event.step, now);
        break;
      case "step-log":
        this.appendLog(this.step(event.step, now), event.data);
        break;
      case "step-progress":
        this.step(event.step, now).progress = { current: event.current, total: event.total, unit: event.unit };
        break;
      case "step-end": {
        const s = this.step(event.step, now);
        s.status = event.cached ? "cached" : "done";
        s.durationMs = event.durationMs;
        if (event.miss) s.miss = describeMiss(event.miss);
        this.flushPartial(s);
        break;
      }
      case "step-error": {
        const s = this.step(event.step, now);
        s.status = "error";
        s.durationMs = now - s.startedAt;
        this.flushPartial(s);
        this.outcome = "error";
        break;
      }
      case "export-start":
        this.add(`export:${this.exports++}`, `exporting to ${event.kind}${event.dest ? ` ${event.dest}` : ""}`, now);
        break;
      case "export-end": {
        // Exports run one after another, so the newest running export is the one that ended.
        const s = [...this.steps].reverse().find((x) => x.status === "running" && x.label.startsWith("exporting to "));
        if (s) {
          s.status = "done";
          s.durationMs = event.durationMs;
        }
        break;
      }
      case "build-end":
        this.durationMs = event.durationMs;
        if (this.outcome === "running") this.outcome = "finished";
        break;
    }
  }

  /** Finished steps and the number known so far (stages not yet started are not counted). */
  counts(): { done: number; total: number } {
    let total = this.exports;
    for (const n of this.stageTotals.values()) total += n;
    const done = this.steps.filter((s) => s.status !== "running").length;
    return { done, total: Math.max(total, this.steps.length) };
  }

  elapsed(now: number): number {
    return this.durationMs ?? (this.startedAt === undefined ? 0 : now - this.startedAt);
  }

  /** The log lines to show for a step: complete lines plus the line being written, newest last. */
  tail(s: StepView, n: number): string[] {
    if (n <= 0) return [];
    const partial = s.partial ? sanitizeLine(s.partial) : "";
    const lines = partial ? [...s.logs, partial] : s.logs;
    return lines.slice(-n);
  }

  private step(ref: StepRef, now: number): StepView {
    this.stageTotals.set(ref.stage, Math.max(ref.total, this.stageTotals.get(ref.stage) ?? 0));
    const found = this.byId.get(ref.id);
    if (found) return found;
    return this.add(ref.id, `[${this.stageLabel(ref.stage)}${ref.index}/${ref.total}] ${oneLine(ref.instruction)}`, now);
  }

  private add(id: string, label: string, now: number): StepView {
    const s: StepView = { label, status: "running", startedAt: now, logs: [], partial: "" };
    this.byId.set(id, s);
    this.steps.push(s);
    return s;
  }

  /** Named stages by name; unnamed ones as docker does ("stage-1") unless the build has one stage. */
  private stageLabel(stage: string): string {
    if (!/^[0-9]+$/.test(stage)) return `${stage} `;
    return this.stageCount > 1 ? `stage-${stage} ` : "";
  }

  private appendLog(s: StepView, data: string): void {
    const parts = (s.partial + data).split("\n");
    s.partial = parts.pop()!;
    if (s.partial.length > PARTIAL_MAX) s.partial = s.partial.slice(-PARTIAL_MAX);
    for (const raw of parts.slice(-LOG_KEEP)) s.logs.push(sanitizeLine(raw));
    if (s.logs.length > LOG_KEEP) s.logs.splice(0, s.logs.length - LOG_KEEP);
  }

  private flushPartial(s: StepView): void {
    if (s.partial) this.appendLog(s, "\n");
  }
}

function oneLine(instruction: string): string {
  return sanitizeLine(instruction.replace(/\s+/g, " ")).trim();
}
