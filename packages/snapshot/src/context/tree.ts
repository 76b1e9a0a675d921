// In-memory view of a walked context: lookup by path, subtree listing and symlink
// resolution scoped to the context root.
import type { ContextEntry } from "./entry.js";
import { SymlinkLoopError } from "./errors.js";

/** BuildKit's limit on symlinks followed while resolving one path. */
const MAX_LINKS = 255;

export class ContextTree {
  private indexValue: Map<string, number> | undefined;

  /** `entries` must be sorted with comparePaths and exclude the root. */
  constructor(
    readonly root: ContextEntry,
    readonly entries: readonly ContextEntry[],
  ) {}

  /** Built on first lookup: a rebuild answered from the digest memo never needs it. */
  private get index(): Map<string, number> {
    if (!this.indexValue) {
      const index = new Map<string, number>();
      this.entries.forEach((e, i) => index.set(e.path, i));
      this.indexValue = index;
    }
    return this.indexValue;
  }

  get(path: string): ContextEntry | undefined {
    if (path === "") return this.root;
    const i = this.index.get(path);
    return i === undefined ? undefined : this.entries[i];
  }

  /** Every entry strictly below `dir`, in tree order (a contiguous run thanks to the sort). */
  descendants(dir: string): ContextEntry[] {
    if (dir === "") return this.entries.slice();
    const i = this.index.get(dir);
    if (i === undefined) return [];
    const prefix = `${dir}/`;
    let end = i + 1;
    while (end < this.entries.length && (this.entries[end] as ContextEntry).path.startsWith(prefix)) end++;
    return this.entries.slice(i + 1, end);
  }

  /**
   * Resolves `path` inside the context like BuildKit's getFollowLinks: symlinks in
   * intermediate components are followed (and in the last one when `followTrailing`);
   * absolute targets restart at the context root and `..` stops at it, so a link can never
   * lead outside. Components are applied lexically (a missing one only matters if the final
   * path is missing). Returns the resolved path, or undefined when nothing is there (or it
   * is ignored).
   */
  resolve(path: string, followTrailing: boolean): string | undefined {
    const resolved = followLinks(path, followTrailing, (p) => {
      const e = this.get(p);
      return e?.type === "symlink" ? (e.linkname ?? "") : undefined;
    });
    return this.get(resolved) ? resolved : undefined;
  }
}

/**
 * The symlink-following walk behind ContextTree.resolve and WalkIndex.resolve: applies the components of
 * `path` lexically, replacing each symlink met (the last one only when `followTrailing`) by its target
 * (`linkTarget` gives it, or undefined for anything that is not a symlink). Returns the path reached,
 * which may not exist.
 */
export function followLinks(path: string, followTrailing: boolean, linkTarget: (path: string) => string | undefined): string {
  // Components to process, reversed so the next one is at the end.
  const todo = path.split("/").reverse();
  const cur: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const comp = todo.pop() as string;
    if (comp === "" || comp === ".") continue;
    if (comp === "..") {
      cur.pop();
      continue;
    }
    const candidate = cur.length === 0 ? comp : `${cur.join("/")}/${comp}`;
    const target = linkTarget(candidate);
    const last = !todo.some((c) => c !== "" && c !== ".");
    if (target !== undefined && (!last || followTrailing)) {
      if (++links > MAX_LINKS) throw new SymlinkLoopError(path);
      if (target.startsWith("/")) cur.length = 0;
      for (const c of target.split("/").reverse()) todo.push(c);
      continue;
    }
    cur.push(comp);
  }
  return cur.join("/");
}
