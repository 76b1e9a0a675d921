// The per-path entry digests of one digestSources answer: looked up one path at a time (a COPY of
// 20k files asks for each, in walk order) or, only if someone wants them all, as a sorted record.
import type { WalkSource } from "./resolve.js";
import type { WalkIndex } from "./walk-index.js";

export class PathDigests {
  /** Whether walk index k contributed, at k + 1 (slot 0 is the root). */
  private readonly member: Uint8Array;
  private recordValue: Record<string, string> | undefined;
  /** The index of the last path asked for: a caller going through a directory in walk order asks for the next. */
  private cursor = -1;

  constructor(
    private readonly walk: WalkIndex,
    sources: readonly WalkSource[],
    /** Entry digests by walk index, as far as known; digestOf fills in the rest. */
    private readonly known: readonly (string | undefined)[],
    private readonly digestOf: (k: number) => string,
  ) {
    this.member = new Uint8Array(walk.size + 1);
    for (const src of sources) for (const m of src.matches) this.member.fill(1, m.index + 1, m.end + 1);
  }

  /** The entry digest of `path` if it contributed (a match or anything below a matched directory). */
  get(path: string): string | undefined {
    // Kept to a few loads per call: a 20k-file COPY asks once per file, mostly before the JIT warms up.
    let k = this.cursor + 1;
    if (this.walk.paths[k] !== path) {
      const found = this.walk.indexOf(path);
      if (found === undefined) return undefined;
      k = found;
    }
    this.cursor = k;
    if (this.member[k + 1] !== 1) return undefined;
    return this.known[k] ?? this.digestOf(k);
  }

  /** Every contributing path's digest, keyed by path in sort() order (as kiln has always listed them). */
  record(): Record<string, string> {
    if (this.recordValue) return this.recordValue;
    const { order, paths } = this.sortedOrder();
    const out: Record<string, string> = {};
    for (let i = 0; i < order.length; i++) out[paths[i] as string] = this.digestOf(order[i] as number);
    this.recordValue = out;
    return out;
  }

  /**
   * record() as canonical JSON text (keys in sort() order, no spaces), written straight from the walk: for a
   * large COPY this is what gets stored and compared, and no 20k-key object is made for it.
   */
  json(): string {
    const { order, paths } = this.sortedOrder();
    const parts = new Array<string>(order.length);
    for (let i = 0; i < order.length; i++) parts[i] = `${JSON.stringify(paths[i])}:${JSON.stringify(this.digestOf(order[i] as number))}`;
    return `{${parts.join(",")}}`;
  }

  /** Contributing walk indices and their paths, in sort() order. */
  private sortedOrder(): { order: number[]; paths: string[] } {
    const member = this.member;
    const order: number[] = [];
    for (let s = 0; s < member.length; s++) if (member[s] === 1) order.push(s - 1);
    // Walk order differs from sort() order only around names with characters below "/": usually a no-op.
    const paths = order.map((k) => this.walk.path(k));
    let sorted = true;
    for (let i = 1; i < paths.length && sorted; i++) sorted = (paths[i - 1] as string) < (paths[i] as string);
    if (!sorted) {
      const byPath = order.map((k, i) => ({ k, p: paths[i] as string })).sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : 0));
      for (let i = 0; i < byPath.length; i++) {
        order[i] = (byPath[i] as { k: number }).k;
        paths[i] = (byPath[i] as { p: string }).p;
      }
    }
    return { order, paths };
  }
}
