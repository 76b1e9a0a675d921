// Where COPY/ADD puts things: Docker's destination rules (as BuildKit's file op implements them) turned
// into the entries of one layer. Pure: sources come described, the parent image as an ImageFsView.
import type { LayerEntry, LayerEntryType, TarPartEntry } from "@kiln/snapshot";
import type { ImageFsView } from "../fs-view.js";

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

class LayerBuilder {
  readonly entries = new Map<string, LayerEntry>();
  constructor(private readonly opts: CopyPlanOptions) {}

  /** Is `rel` a directory, in this layer or (if not touched here) in the parent image? */
  isDir(rel: string): boolean {
    const own = this.entries.get(rel);
    if (own) return own.type === "dir";
    return this.opts.view.isDir(rel);
  }

  exists(rel: string): boolean {
    return rel === "" || this.entries.has(rel) || this.opts.view.stat(rel) !== undefined;
  }

  /** mkdir -p: creates missing dirs (0755 or --chmod, --chown owner), records existing ancestors. */
  mkdirAll(rel: string): void {
    // Every recorded path has its ancestors recorded too, so a known path needs no walk (the common case:
    // thousands of files share a few parents).
    if (rel === "" || this.entries.has(rel)) return;
    const parts = rel.split("/").filter((p) => p !== "");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (this.entries.has(p)) continue;
      const existing = this.opts.view.stat(p);
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
  }

  /** Records an existing ancestor directory that a change below it touches (the diff includes it). */
  touchAncestors(rel: string): void {
    const parts = rel.split("/");
    parts.pop();
    if (parts.length > 0) this.mkdirAll(parts.join("/"));
  }

  put(rel: string, node: CopyNode, applyMetadata: boolean): void {
    this.touchAncestors(rel);
    const prev = this.entries.get(rel);
    const keepDir = node.type === "dir" && (prev?.type === "dir" || (!prev && this.opts.view.isDir(rel)));
    if (node.type === "dir" && keepDir && !applyMetadata) {
      // An existing directory keeps its metadata (fsutil only copies file info onto dirs it creates).
      if (!prev) this.mkdirAll(rel);
      return;
    }
    const entry: LayerEntry = {
      path: rel,
      type: node.type,
      mode: this.opts.chmod ?? node.mode,
      uid: this.opts.chown?.uid ?? node.uid,
      gid: this.opts.chown?.gid ?? node.gid,
      mtimeMs: node.mtimeMs,
    };
    if (node.size !== undefined) entry.size = node.size;
    if (node.linkname !== undefined) entry.linkname = node.linkname;
    if (node.open) entry.open = node.open;
    if (node.sourcePath) entry.sourcePath = node.sourcePath;
    if (node.fingerprint !== undefined) (entry as TarPartEntry).fingerprint = node.fingerprint;
    // Replacing a directory with a non-directory drops what this layer put below it.
    if (prev?.type === "dir" && node.type !== "dir") {
      for (const key of [...this.entries.keys()]) if (key.startsWith(`${rel}/`)) this.entries.delete(key);
    }
    this.entries.set(rel, entry);
  }
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
      for (const child of source.children ?? []) {
        const childRel = target === "" ? child.rel : `${target}/${child.rel}`;
        const existedBefore = b.exists(childRel);
        b.put(childRel, child.node, !existedBefore);
      }
    } else {
      if (target === "") throw new CopyPlanError("cannot copy a file onto the root directory");
      b.put(target, source.node, true);
    }
  }
  return [...b.entries.values()];
}
