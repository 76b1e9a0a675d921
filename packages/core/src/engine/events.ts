// Build events: the typed stream a library user (or the CLI's progress view) reads during a build.
import type { Digest } from "../image/oci.js";

export interface StepRef {
  /** Unique within the build: "stage/index". */
  id: string;
  /** Stage name (or its index as a string when unnamed). */
  stage: string;
  /** 1-based position of the step in its stage, and the number of steps in the stage (FROM included). */
  index: number;
  total: number;
  /** The instruction as written (continuations joined). */
  instruction: string;
  line: number;
}

/** Why a step could not be taken from the cache. */
export type MissReason =
  | { kind: "no-cache" }
  | { kind: "parent-changed" }
  | { kind: "first-build" }
  | { kind: "instruction-changed"; previous: string; current: string }
  | { kind: "build-args-changed"; changed: { name: string; previous?: string; current?: string }[] }
  | { kind: "files-changed"; added: string[]; removed: string[]; changed: string[] }
  | { kind: "base-changed"; previous?: string; current: string }
  | { kind: "unknown" };

export type BuildEvent =
  | { type: "build-start"; dockerfile: string; context: string; target: string; stages: string[] }
  | { type: "step-start"; step: StepRef }
  | { type: "step-log"; step: StepRef; stream: "stdout" | "stderr"; data: string }
  | { type: "step-progress"; step: StepRef; current: number; total?: number; unit: "bytes" | "files" }
  | {
      type: "step-end";
      step: StepRef;
      cached: boolean;
      miss?: MissReason;
      durationMs: number;
      cacheKey: Digest;
      layer?: { digest: Digest; diffID: Digest; size: number } | undefined;
      /**
       * How a COPY/ADD layer written as parts was made: parts in all, taken from the previous build, newly
       * written; and whether its diffID came from the hash started before planning (a right guess).
       */
      parts?: { total: number; reused: number; written: number; speculated: boolean };
    }
  | { type: "step-error"; step: StepRef; message: string }
  | { type: "warning"; message: string }
  | { type: "export-start"; kind: string; dest?: string }
  | { type: "export-end"; kind: string; dest?: string; durationMs: number }
  | { type: "build-end"; imageId: Digest; manifestDigest: Digest; durationMs: number };

export function describeMiss(miss: MissReason): string {
  switch (miss.kind) {
    case "no-cache":
      return "--no-cache";
    case "parent-changed":
      return "an earlier step changed";
    case "first-build":
      return "no earlier build of this step";
    case "instruction-changed":
      return `instruction changed (was: ${miss.previous})`;
    case "build-args-changed":
      return miss.changed
        .map((c) => (c.previous === undefined ? `build arg ${c.name} added` : c.current === undefined ? `build arg ${c.name} removed` : `build arg ${c.name} changed`))
        .join(", ");
    case "files-changed": {
      const parts: string[] = [];
      const list = (xs: string[]) => (xs.length > 3 ? `${xs.slice(0, 3).join(", ")} and ${xs.length - 3} more` : xs.join(", "));
      if (miss.changed.length) parts.push(`changed: ${list(miss.changed)}`);
      if (miss.added.length) parts.push(`added: ${list(miss.added)}`);
      if (miss.removed.length) parts.push(`removed: ${list(miss.removed)}`);
      return `files ${parts.join("; ") || "changed"}`;
    }
    case "base-changed":
      return `base image changed${miss.previous ? ` (was ${miss.previous.slice(0, 19)})` : ""}`;
    case "unknown":
      return "cache miss";
  }
}
