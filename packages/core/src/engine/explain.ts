// Explaining a cache miss: compare a step's inputs with the record the previous build had at the
// same position (same stage and step index).
import type { CacheKeyInputs } from "@kiln/cache";
import type { MissReason } from "./events.js";

export function explainMiss(current: CacheKeyInputs, previous: CacheKeyInputs | undefined, previousFiles?: Record<string, string>, currentFiles?: Record<string, string>): MissReason {
  if (!previous) return { kind: "first-build" };
  if (current.base !== undefined && current.base !== previous.base) {
    return previous.base === undefined ? { kind: "base-changed", current: current.base } : { kind: "base-changed", previous: previous.base, current: current.base };
  }
  if (current.instruction !== previous.instruction) return { kind: "instruction-changed", previous: previous.instruction, current: current.instruction };
  const changedArgs: { name: string; previous?: string; current?: string }[] = [];
  const names = new Set([...Object.keys(previous.buildArgs ?? {}), ...Object.keys(current.buildArgs ?? {})]);
  for (const name of [...names].sort()) {
    const a = previous.buildArgs?.[name];
    const b = current.buildArgs?.[name];
    if (a === b) continue;
    const change: { name: string; previous?: string; current?: string } = { name };
    if (a !== undefined) change.previous = a;
    if (b !== undefined) change.current = b;
    changedArgs.push(change);
  }
  if (changedArgs.length > 0) return { kind: "build-args-changed", changed: changedArgs };
  if (current.filesDigest !== previous.filesDigest) {
    if (previousFiles && currentFiles) {
      const added: string[] = [];
      const removed: string[] = [];
      const changed: string[] = [];
      for (const [p, d] of Object.entries(currentFiles)) {
        const old = previousFiles[p];
        if (old === undefined) added.push(p);
        else if (old !== d) changed.push(p);
      }
      for (const p of Object.keys(previousFiles)) if (!(p in currentFiles)) removed.push(p);
      // A changed file also changes its directories' tree digests; name the files, not every parent dir.
      const isParentOfAnother = (p: string, list: string[]) => list.some((q) => q !== p && (p === "" || q.startsWith(`${p}/`)));
      const leaf = (list: string[]) => list.filter((p) => !isParentOfAnother(p, [...added, ...removed, ...changed])).sort();
      return { kind: "files-changed", added: leaf(added), removed: leaf(removed), changed: leaf(changed) };
    }
    return { kind: "files-changed", added: [], removed: [], changed: [] };
  }
  return { kind: "parent-changed" };
}
