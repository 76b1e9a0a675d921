// Explaining a cache miss: compare a step's inputs with the record the previous build had at the
// same position (same stage and step index).
import type { CacheKeyInputs } from "@kiln/cache";
import type { MissReason } from "./events.js";

/**
 * A COPY's per-path digests: the record, or its canonical JSON text (sorted keys), which a build compares
 * without building two 20k-key objects.
 */
export type FileIndex = Record<string, string> | string;

export function explainMiss(current: CacheKeyInputs, previous: CacheKeyInputs | undefined, previousFiles?: FileIndex, currentFiles?: FileIndex): MissReason {
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
    if (previousFiles !== undefined && currentFiles !== undefined) {
      const { added, removed, changed } = diffFileIndexes(previousFiles, currentFiles);
      // A changed file also changes its directories' tree digests; name the files, not every parent dir.
      const isParentOfAnother = (p: string, list: string[]) => list.some((q) => q !== p && (p === "" || q.startsWith(`${p}/`)));
      const leaf = (list: string[]) => list.filter((p) => !isParentOfAnother(p, [...added, ...removed, ...changed])).sort();
      return { kind: "files-changed", added: leaf(added), removed: leaf(removed), changed: leaf(changed) };
    }
    return { kind: "files-changed", added: [], removed: [], changed: [] };
  }
  return { kind: "parent-changed" };
}

/** Paths added, removed and changed between two file indexes. */
function diffFileIndexes(before: FileIndex, after: FileIndex): { added: string[]; removed: string[]; changed: string[] } {
  if (typeof before === "string" && typeof after === "string") {
    const merged = diffCanonicalJson(before, after);
    if (merged) return merged;
  }
  const prev = typeof before === "string" ? (JSON.parse(before) as Record<string, string>) : before;
  const cur = typeof after === "string" ? (JSON.parse(after) as Record<string, string>) : after;
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const [p, d] of Object.entries(cur)) {
    const old = prev[p];
    if (old === undefined) added.push(p);
    else if (old !== d) changed.push(p);
  }
  for (const p of Object.keys(prev)) if (!(p in cur)) removed.push(p);
  return { added, removed, changed };
}

/**
 * The same diff over two canonical JSON texts of string records, walked side by side (both list their keys
 * in sorted order). Undefined when either text is not of that exact shape, for the general path.
 */
export function diffCanonicalJson(before: string, after: string): { added: string[]; removed: string[]; changed: string[] } | undefined {
  const a = new RecordScanner(before);
  const b = new RecordScanner(after);
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  try {
    let x = a.next();
    let y = b.next();
    while (x || y) {
      if (x && y && x[0] === y[0]) {
        if (x[1] !== y[1]) changed.push(y[0]);
        x = a.next();
        y = b.next();
      } else if (y && (!x || y[0] < x[0])) {
        added.push(y[0]);
        y = b.next();
      } else {
        removed.push(x![0]);
        x = a.next();
      }
    }
  } catch {
    return undefined;
  }
  return { added, removed, changed };
}

/** Reads `{"key":"value",...}` entry by entry, checking that keys strictly increase. */
class RecordScanner {
  private pos = 1;
  private last: string | undefined;
  constructor(private readonly text: string) {
    if (text.charCodeAt(0) !== 0x7b || text.charCodeAt(text.length - 1) !== 0x7d) throw new Error("not a record");
    if (text === "{}") this.pos = text.length;
  }

  next(): [string, string] | undefined {
    if (this.pos >= this.text.length) return undefined;
    const key = this.string();
    if (this.text.charCodeAt(this.pos) !== 0x3a) throw new Error("expected ':'");
    this.pos++;
    const value = this.string();
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x2c) this.pos++;
    else if (c === 0x7d && this.pos === this.text.length - 1) this.pos = this.text.length;
    else throw new Error("expected ',' or '}'");
    if (this.last !== undefined && !(this.last < key)) throw new Error("keys out of order");
    this.last = key;
    return [key, value];
  }

  private string(): string {
    const t = this.text;
    if (t.charCodeAt(this.pos) !== 0x22) throw new Error("expected a string");
    let j = this.pos + 1;
    let escaped = false;
    for (;;) {
      const c = t.charCodeAt(j);
      if (Number.isNaN(c)) throw new Error("unterminated string");
      if (c === 0x5c) {
        escaped = true;
        j += 2;
        continue;
      }
      if (c === 0x22) break;
      j++;
    }
    const raw = t.slice(this.pos, j + 1);
    this.pos = j + 1;
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  }
}
