// Where COPY/ADD puts things: Docker's destination rules (as BuildKit's file op implements them) turned
// into the entries of one layer. Pure: sources come described, the parent image as an ImageFsView.
import type { LayerEntry, LayerEntryType, TarPartEntry } from "@kiln/snapshot";
import type { FsNode, ImageFsView, ViewCursor } from "../fs-view.js";

/** One filesystem object to copy; `open` streams a file's content. */
export interface CopyNode {
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  size?: number;
  linkname?: string;
  open?: () => NodeJS.ReadableStream;
  /** Host file with the content, for fast synchronous reads by the layer writer. */
  sourcePath?: string;
  /** Content identity (the context's entry digest): unchanged files let the layer writer reuse parts. */
  fingerprint?: string;
}

/** A matched source: the object itself and, for a directory, everything below it (relative paths). */
export interface CopySource {
  /** Source path as matched (its base name names the copy when the destination is a directory). */
  path: string;
  node: CopyNode;
  children?: { rel: string; node: CopyNode }[];
}

export interface CopyPlanOptions {
  sources: CopySource[];
  /** Absolute destination, trailing "/" kept (it means "a directory"). */
  dest: string;
  /** The image the layer goes on top of (an empty view for --link). */
  view: ImageFsView;
  chown?: { uid: number; gid: number };
  /** --chmod as an octal mode. */
  chmod?: number;
  /** mtime for directories the copy creates (ms). */
  createdMtimeMs: number;
}

export class CopyPlanError extends Error {
  override readonly name = "CopyPlanError";
}

const DEFAULT_DIR_MODE = 0o755;

const ROOT: ViewCursor = { path: "", depth: 0 };

class LayerBuilder {
  readonly entries = new Map<string, LayerEntry>();
  /**
   * View cursors of the directories paths are planned below, by layer path: each directory is resolved
   * against the image once, and its children are looked up from it (not walked from the root one by one).
   */
  private readonly cursors = new Map<string, ViewCursor | undefined>();
  constructor(private readonly opts: CopyPlanOptions) {}

  /** Is `rel` a directory, in this layer or (if not touched here) in the parent image? */
  isDir(rel: string): boolean {
    const own = this.entries.get(rel);
    if (own) return own.type === "dir";
    return this.viewIsDir(rel, this.viewStat(rel));
  }

  exists(rel: string): boolean {
    return rel === "" || this.entries.has(rel) || this.viewStat(rel) !== undefined;
  }

  /** The image's node at `rel`, following symlinks: `view.stat(rel)`, from the parent's cursor. */
  private viewStat(rel: string): FsNode | undefined {
    const slash = rel.lastIndexOf("/");
    if (slash < 0) return this.opts.view.statChild(ROOT, rel);
    return this.opts.view.statChild(this.cursorOf(rel.slice(0, slash)), rel.slice(slash + 1));
  }

  /** `view.isDir(rel)`, given `viewStat(rel)`: the root always is one. */
  private viewIsDir(rel: string, node: FsNode | undefined): boolean {
    return node?.type === "dir" || rel === "" || isRootLike(rel);
  }

  private cursorOf(rel: string): ViewCursor | undefined {
    if (rel === "") return ROOT;
    const known = this.cursors.get(rel);
    if (known !== undefined || this.cursors.has(rel)) return known;
    const slash = rel.lastIndexOf("/");
    const c = slash < 0 ? this.opts.view.child(ROOT, rel) : this.opts.view.child(this.cursorOf(rel.slice(0, slash)), rel.slice(slash + 1));
    this.cursors.set(rel, c);
    return c;
  }

  /** mkdir -p: creates missing dirs (0755 or --chmod, --chown owner), records existing ancestors. */
  mkdirAll(rel: string): void {
    // Every recorded path has its ancestors recorded too, so a known path needs no walk (the common case:
    // thousands of files share a few parents).
    if (rel === "" || this.entries.has(rel)) return;
    const clean = hasEmptyComponent(rel) ? rel.split("/").filter((p) => p !== "").join("/") : rel;
    for (let end = clean.indexOf("/"); ; end = clean.indexOf("/", end + 1)) {
      const p = end < 0 ? clean : clean.slice(0, end);
      if (!this.entries.has(p)) {
        const existing = this.viewStat(p);
        if (existing) {
          if (existing.type !== "dir") throw new CopyPlanError(`cannot copy to /${p}: not a directory`);
          this.entries.set(p, { path: p, type: "dir", mode: existing.mode, uid: existing.uid, gid: existing.gid, mtimeMs: this.opts.createdMtimeMs });
        } else {
          this.entries.set(p, {
            path: p,
            type: "dir",
            mode: this.opts.chmod ?? DEFAULT_DIR_MODE,
            uid: this.opts.chown?.uid ?? 0,
            gid: this.opts.chown?.gid ?? 0,
            mtimeMs: this.opts.createdMtimeMs,
          });
        }
      }
      if (end < 0) break;
    }
  }

  /** Records an existing ancestor directory that a change below it touches (the diff includes it). */
  touchAncestors(rel: string): void {
    const slash = rel.lastIndexOf("/");
    if (slash >= 0) this.mkdirAll(rel.slice(0, slash));
  }

  /** Puts a node where an existing one (here or in the image) keeps its metadata if both are directories. */
  putOver(rel: string, node: CopyNode): void {
    this.touchAncestors(rel);
    const prev = this.entries.get(rel);
    if (prev) {
      this.write(rel, node, prev, node.type === "dir" && prev.type === "dir", false);
      return;
    }
    const below = rel === "" ? undefined : this.viewStat(rel);
    const existed = rel === "" || below !== undefined;
    this.write(rel, node, undefined, node.type === "dir" && this.viewIsDir(rel, below), !existed);
  }

  /** Puts a node, its metadata applied (a new path, or a file source named outright). */
  put(rel: string, node: CopyNode, applyMetadata: boolean): void {
    this.touchAncestors(rel);
    const prev = this.entries.get(rel);
    const keepDir = node.type === "dir" && (prev?.type === "dir" || (!prev && this.viewIsDir(rel, this.viewStat(rel))));
    this.write(rel, node, prev, keepDir, applyMetadata);
  }

  /**
   * Puts a directory source's children below `target` (each as `putOver`). Siblings share one lookup of
   * their parent: it is recorded once, resolved against the image once, and when the image has nothing
   * below it (a directory new in this layer, or an empty one) their own paths are not looked up at all.
   */
  putChildren(target: string, children: readonly { rel: string; node: CopyNode }[]): void {
    const view = this.opts.view;
    let parent = "";
    let parentEnd = -2; // where the current parent's path ends in a child's path; -2: none yet
    let parentCursor: ViewCursor | undefined;
    let plain = false; // the parent resolves to itself: a child's path is its path in the image
    let below = false; // the image may have something below the parent
    for (const child of children) {
      const rel = target === "" ? child.rel : `${target}/${child.rel}`;
      const slash = rel.lastIndexOf("/");
      if (slash === 0 || !isPlainName(rel, slash + 1)) {
        this.putOver(rel, child.node);
        parentEnd = -2;
        continue;
      }
      if (slash !== parentEnd || (slash > 0 && !rel.startsWith(parent))) {
        parent = slash < 0 ? "" : rel.slice(0, slash);
        parentEnd = slash;
        if (slash > 0) this.mkdirAll(parent);
        parentCursor = this.cursorOf(parent);
        plain = parentCursor !== undefined && parentCursor.path === parent;
        below = view.hasBelow(parentCursor);
      }
      // A sibling's put never removes the parent, so it stays recorded for the next one.
      const prev = this.entries.get(rel);
      if (prev !== undefined) {
        this.write(rel, child.node, prev, child.node.type === "dir" && prev.type === "dir", false);
        continue;
      }
      let existing: FsNode | undefined;
      if (below) {
        existing = plain ? view.nodeAt(rel) : undefined;
        if (!plain || (existing?.type === "symlink" && existing.linkname !== undefined)) existing = view.statChild(parentCursor, rel.slice(slash + 1));
      }
      this.write(rel, child.node, undefined, child.node.type === "dir" && existing?.type === "dir", existing === undefined);
    }
  }

  private write(rel: string, node: CopyNode, prev: LayerEntry | undefined, keepDir: boolean, applyMetadata: boolean): void {
    if (keepDir && !applyMetadata) {
      // An existing directory keeps its metadata (fsutil only copies file info onto dirs it creates).
      if (!prev) this.mkdirAll(rel);
      return;
    }
    const { chmod, chown } = this.opts;
    const mode = chmod ?? node.mode;
    const uid = chown ? chown.uid : node.uid;
    const gid = chown ? chown.gid : node.gid;
    let entry: LayerEntry;
    if (node.sourcePath && node.fingerprint !== undefined && node.size !== undefined && node.linkname === undefined && !node.open) {
      // A context file (tens of thousands per COPY): one literal, all its fields at once.
      entry = { path: rel, type: node.type, mode, uid, gid, mtimeMs: node.mtimeMs, size: node.size, sourcePath: node.sourcePath, fingerprint: node.fingerprint } as TarPartEntry;
    } else {
      entry = { path: rel, type: node.type, mode, uid, gid, mtimeMs: node.mtimeMs };
      if (node.size !== undefined) entry.size = node.size;
      if (node.linkname !== undefined) entry.linkname = node.linkname;
      if (node.open) entry.open = node.open;
      if (node.sourcePath) entry.sourcePath = node.sourcePath;
      if (node.fingerprint !== undefined) (entry as TarPartEntry).fingerprint = node.fingerprint;
    }
    // Replacing a directory with a non-directory drops what this layer put below it.
    if (prev?.type === "dir" && node.type !== "dir") {
      for (const key of [...this.entries.keys()]) if (key.startsWith(`${rel}/`)) this.entries.delete(key);
    }
    this.entries.set(rel, entry);
  }
}

/** Whether `p` from `start` on is one ordinary component (not empty, ".", ".." nor containing "/"). */
function isPlainName(p: string, start: number): boolean {
  const n = p.length - start;
  if (n <= 0) return false;
  if (p.charCodeAt(start) === 0x2e && (n === 1 || (n === 2 && p.charCodeAt(start + 1) === 0x2e))) return false;
  return true;
}

/** "" / "." / "/./" and the like: paths that name the root once cleaned (the view always has it as a directory). */
function isRootLike(p: string): boolean {
  const c = p.charCodeAt(0);
  if (c !== 0x2e && c !== 0x2f) return false;
  return p.split("/").every((s) => s === "" || s === ".");
}

function hasEmptyComponent(p: string): boolean {
  return p.startsWith("/") || p.endsWith("/") || p.includes("//");
}

function rel(abs: string): string {
  return abs.split("/").filter((p) => p !== "" && p !== ".").join("/");
}

function baseName(p: string): string {
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  return parts.at(-1) ?? "";
}

/** Resolves symlinks in the existing part of a destination path, as fs.RootPath does in BuildKit. */
function resolveDest(view: ImageFsView, destRel: string): string {
  if (destRel === "") return "";
  const resolved = view.resolve(destRel);
  if (resolved !== undefined) return resolved;
  const parts = destRel.split("/");
  const last = parts.pop()!;
  const parent = resolveDest(view, parts.join("/"));
  return parent === "" ? last : `${parent}/${last}`;
}

/** Plans the layer of one COPY/ADD: every entry it writes, ancestors included. */
export function planCopy(opts: CopyPlanOptions): LayerEntry[] {
  const b = new LayerBuilder(opts);
  const destIsDirHint = opts.dest.endsWith("/") || opts.dest.endsWith("/.");
  const destRel = resolveDest(opts.view, rel(opts.dest));

  // BuildKit first makes sure the destination (when it names a directory) or its parent exists.
  if (destIsDirHint) b.mkdirAll(destRel);
  else if (destRel.includes("/")) b.mkdirAll(destRel.slice(0, destRel.lastIndexOf("/")));

  for (const source of opts.sources) {
    let target = destRel;
    const srcIsDir = source.node.type === "dir";
    if (!srcIsDir && b.exists(target) && b.isDir(target)) target = target === "" ? baseName(source.path) : `${target}/${baseName(source.path)}`;
    if (srcIsDir) {
      // Directory contents go into the destination; the destination itself is made (mkdir -p) if missing.
      b.mkdirAll(target);
      b.putChildren(target, source.children ?? []);
    } else {
      if (target === "") throw new CopyPlanError("cannot copy a file onto the root directory");
      b.put(target, source.node, true);
    }
  }
  return [...b.entries.values()];
}
