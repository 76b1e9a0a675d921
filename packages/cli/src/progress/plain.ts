// Line-oriented progress for CI logs, in the spirit of BuildKit's plain output:
//   #3 [2/5] COPY site/ ./
//   #3 CACHED
import type { BuildEvent } from "@kiln/core";
import { describeMiss } from "@kiln/core";

export interface PlainProgressOptions {
  /** Say why each rebuilt step missed the cache. */
  explain?: boolean;
  write: (line: string) => void;
}

export function plainProgress(options: PlainProgressOptions): (event: BuildEvent) => void {
  const ids = new Map<string, number>();
  let next = 1;
  const idOf = (stepId: string): number => {
    let n = ids.get(stepId);
    if (n === undefined) {
      n = next++;
      ids.set(stepId, n);
    }
    return n;
  };
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  return (event) => {
    switch (event.type) {
      case "step-start": {
        const s = event.step;
        const prefix = s.stage === "0" || /^[0-9]+$/.test(s.stage) ? "" : `${s.stage} `;
        options.write(`#${idOf(s.id)} [${prefix}${s.index}/${s.total}] ${s.instruction}`);
        break;
      }
      case "step-log":
        for (const line of event.data.replace(/\n$/, "").split("\n")) options.write(`#${idOf(event.step.id)} ${line}`);
        break;
      case "step-end": {
        const n = idOf(event.step.id);
        if (event.cached) options.write(`#${n} CACHED`);
        else {
          if (options.explain && event.miss) options.write(`#${n} cache miss: ${describeMiss(event.miss)}`);
          options.write(`#${n} DONE ${seconds(event.durationMs)}`);
        }
        break;
      }
      case "step-error":
        options.write(`#${idOf(event.step.id)} ERROR: ${event.message}`);
        break;
      case "warning":
        options.write(`WARNING: ${event.message}`);
        break;
      case "export-start":
        options.write(`#${next} exporting to ${event.kind}${event.dest ? ` ${event.dest}` : ""}`);
        break;
      case "export-end":
        options.write(`#${next++} DONE ${seconds(event.durationMs)}`);
        break;
      case "build-end":
        options.write(`writing image ${event.imageId} (manifest ${event.manifestDigest}) in ${seconds(event.durationMs)}`);
        break;
      default:
        break;
    }
  };
}
