// A read-only view of an image's filesystem built from its layer tars: which paths exist, their type and
// owner, and the content of small files (/etc/passwd). COPY needs it to decide "into a directory or onto
// a file" and to resolve --chown names; nothing is unpacked to disk for it.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { readLayerTar, parseWhiteout, type LayerEntryType } from "@kiln/snapshot";
import type { Digest, LayerDescriptor } from "../image/oci.js";

export interface FsNode {
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  linkname?: string;
  /** Index of the layer that last wrote this path. */
  layer: number;
}

/** A resolved position in the view: the symlink-free path a path leads to (it may not exist). */
export interface ViewCursor {
  readonly path: string;
  /** Symlinks followed to get here (resolution gives up past 40). */
  readonly depth: number;
}

export interface LayerBlobReader {
  createReadStream(digest: Digest): NodeJS.ReadableStream;
}

type Listing = [path: string, type: LayerEntryType | "whiteout" | "opaque", mode: number, uid: number, gid: number, linkname?: string][];

/** Lists one layer's entries; cached on disk by diffID since a layer never changes. */
/** Parsed listings by diffID: every step of a build loads the views of the same base layers again. */
const listingMemo = new Map<string, Listing>();
const LISTING_MEMO_MAX = 64;

async function listLayer(blobs: LayerBlobReader, layer: LayerDescriptor, cacheDir: string | undefined, signal?: AbortSignal): Promise<Listing> {
  const memo = listingMemo.get(layer.diffID);
  if (memo) return memo;
  const listing = await readListing(blobs, layer, cacheDir, signal);
  if (listingMemo.size >= LISTING_MEMO_MAX) listingMemo.delete(listingMemo.keys().next().value!);
  listingMemo.set(layer.diffID, listing);
  return listing;
}

async function readListing(blobs: LayerBlobReader, layer: LayerDescriptor, cacheDir: string | undefined, signal?: AbortSignal): Promise<Listing> {
  const cacheFile = cacheDir ? path.join(cacheDir, `${layer.diffID.slice("sha256:".length)}.json`) : undefined;
  if (cacheFile) {
    try {
      return JSON.parse(await readFile(cacheFile, "utf8")) as Listing;
    } catch {
      // not cached yet
    }
  }
  const listing: Listing = [];
  for await (const { entry, body } of readLayerTar(blobs.createReadStream(layer.digest), signal ? { signal } : {})) {
    body.resume();
    const wh = parseWhiteout(entry.path);
    if (wh?.kind === "whiteout") listing.push([wh.target, "whiteout", 0, 0, 0]);
    else if (wh?.kind === "opaque") listing.push([wh.dir, "opaque", 0, 0, 0]);
    else if (wh === null) listing.push(entry.linkname !== undefined ? [entry.path, entry.type, entry.mode, entry.uid, entry.gid, entry.linkname] : [entry.path, entry.type, entry.mode, entry.uid, entry.gid]);
  }
  if (cacheFile && cacheDir) {
    await mkdir(cacheDir, { recursive: true });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(listing));
    await rename(tmp, cacheFile);
  }
  return listing;
}

export class ImageFsView {
  private constructor(
    private readonly nodes: Map<string, FsNode>,
    private readonly layers: LayerDescriptor[],
    private readonly blobs: LayerBlobReader,
  ) {}

  static empty(blobs: LayerBlobReader): ImageFsView {
    return new ImageFsView(new Map(), [], blobs);
  }

  static async load(blobs: LayerBlobReader, layers: LayerDescriptor[], options: { cacheDir?: string; signal?: AbortSignal } = {}): Promise<ImageFsView> {
    const nodes = new Map<string, FsNode>();
    for (let i = 0; i < layers.length; i++) {
      const listing = await listLayer(blobs, layers[i]!, options.cacheDir, options.signal);
      // Whiteouts hide what lower layers have, so they apply before this layer's own entries: gather this
      // layer's deletions (whiteouts, opaque dirs, dirs replaced by non-dirs), then drop everything they
      // cover in one pass over the tree rather than one pass per deletion.
      const gone = new Set<string>();
      const emptied = new Set<string>();
      for (const [p, type] of listing) {
        if (type === "whiteout") gone.add(p);
        else if (type === "opaque") emptied.add(p);
        else if (type !== "dir" && nodes.get(p)?.type === "dir") gone.add(p);
      }
      if (gone.size > 0 || emptied.size > 0) removeCovered(nodes, gone, emptied);
      for (const [p, type, mode, uid, gid, linkname] of listing) {
        if (type !== "whiteout" && type !== "opaque") {
          const node: FsNode = { type, mode, uid, gid, layer: i };
          if (linkname !== undefined) node.linkname = linkname;
          nodes.set(p, node);
        }
      }
    }
    return new ImageFsView(nodes, layers, blobs);
  }

  /** Looks a path up without following symlinks. `p` is absolute or relative to "/". */
  lstat(p: string): FsNode | undefined {
    return this.nodes.get(toRel(p));
  }

  /** Looks a path up following symlinks in every component (bounded, never leaving the root). */
  stat(p: string): FsNode | undefined {
    const resolved = this.resolve(p);
    return resolved === undefined ? undefined : this.nodes.get(resolved);
  }

  #symlinks: boolean | undefined;

  /** Whether any node is a symlink (views are immutable once built, so this is computed once). */
  private get hasSymlinks(): boolean {
    if (this.#symlinks === undefined) {
      this.#symlinks = false;
      for (const n of this.nodes.values()) if (n.type === "symlink") this.#symlinks = true;
    }
    return this.#symlinks;
  }

  /** Resolves symlinks inside the image root; returns the relative path, or undefined if missing. */
  resolve(p: string): string | undefined {
    const rel = toRel(p);
    // Without symlinks resolution is lexical; a clean path (the common case) is a plain lookup.
    if (!this.hasSymlinks && !hasDotDot(rel)) return rel === "" || this.nodes.has(rel) ? rel : undefined;
    const c = this.walk("", 0, rel);
    if (c === undefined) return undefined;
    return c.path === "" || this.nodes.has(c.path) ? c.path : undefined;
  }

  /**
   * Where `p` leads once the symlinks in its components are followed, whether or not it exists (undefined
   * only past 40 symlinks). Resolving many paths below one directory: make its cursor once and step from
   * it with `child`/`statChild`, rather than walking every path from the root.
   */
  cursor(p: string): ViewCursor | undefined {
    return this.walk("", 0, p);
  }

  /** The cursor of `name` below `parent`: the same as `cursor` of the joined path. */
  child(parent: ViewCursor | undefined, name: string): ViewCursor | undefined {
    return parent === undefined ? undefined : this.walk(parent.path, parent.depth, name);
  }

  /** What a cursor leads to: `stat` of the path it was made from. */
  statCursor(c: ViewCursor | undefined): FsNode | undefined {
    return c === undefined ? undefined : this.nodes.get(c.path);
  }

  /** The node at a symlink-free, clean relative path (a cursor's `path` or a plain child of one). */
  nodeAt(rel: string): FsNode | undefined {
    return this.nodes.get(rel);
  }

  #parents: Set<string> | undefined;

  /** Whether anything lies below `c`'s path: when not, every path below it is missing from the view. */
  hasBelow(c: ViewCursor | undefined): boolean {
    if (c === undefined) return false;
    if (c.path === "") return this.nodes.size > 0;
    if (this.#parents === undefined) {
      // Every proper prefix of every path, built once (views never change).
      const parents = new Set<string>();
      for (const key of this.nodes.keys()) {
        for (let slash = key.lastIndexOf("/"); slash > 0; slash = key.lastIndexOf("/", slash - 1)) {
          const p = key.slice(0, slash);
          if (parents.has(p)) break; // its own prefixes are in already
          parents.add(p);
        }
      }
      this.#parents = parents;
    }
    return this.#parents.has(c.path);
  }

  /** `stat` of `name` below `parent`, without making a cursor when `name` is a plain non-symlink. */
  statChild(parent: ViewCursor | undefined, name: string): FsNode | undefined {
    if (parent === undefined) return undefined;
    if (name !== "" && name !== "." && name !== ".." && !name.includes("/")) {
      const node = this.nodes.get(parent.path === "" ? name : `${parent.path}/${name}`);
      if (node?.type !== "symlink" || node.linkname === undefined) return node;
    }
    return this.statCursor(this.child(parent, name));
  }

  /**
   * Walks `p` component by component from `current` (already resolved, after `depth` symlinks): a symlink's
   * target is walked again from the root with the rest of `p` appended; ".." never goes above the root.
   */
  private walk(current: string, depth: number, p: string): ViewCursor | undefined {
    if (depth > 40) return undefined;
    const n = p.length;
    for (let start = 0; start <= n; ) {
      let end = p.indexOf("/", start);
      if (end < 0) end = n;
      if (end > start) {
        const name = p.slice(start, end);
        if (name === "..") {
          const slash = current.lastIndexOf("/");
          current = slash < 0 ? "" : current.slice(0, slash);
        } else if (name !== ".") {
          const candidate = current === "" ? name : `${current}/${name}`;
          const node = this.nodes.get(candidate);
          if (node?.type === "symlink" && node.linkname !== undefined) {
            const target = node.linkname.startsWith("/") || current === "" ? node.linkname : `${current}/${node.linkname}`;
            return this.walk("", depth + 1, end + 1 < n ? `${target}/${p.slice(end + 1)}` : target);
          }
          current = candidate;
        }
      }
      start = end + 1;
    }
    return { path: current, depth };
  }

  isDir(p: string): boolean {
    const rel = toRel(p);
    if (rel === "") return true;
    return this.stat(p)?.type === "dir";
  }

  /** Reads a small file's content (follows symlinks). */
  async readFile(p: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    const rel = this.resolve(p);
    if (rel === undefined) return undefined;
    const node = this.nodes.get(rel);
    if (!node || node.type !== "file") return undefined;
    const layer = this.layers[node.layer]!;
    // Layers never change, so a file read from one (/etc/passwd for every RUN's USER) is read once.
    const memoKey = `${layer.digest}\0${rel}`;
    const memo = fileMemo.get(memoKey);
    if (memo) return memo;
    const content = await this.readFromLayer(layer, rel, signal);
    if (content && content.length <= MEMO_MAX_FILE) {
      if (fileMemo.size >= MEMO_MAX_ENTRIES) fileMemo.delete(fileMemo.keys().next().value!);
      fileMemo.set(memoKey, content);
    }
    return content;
  }

  private async readFromLayer(layer: LayerDescriptor, rel: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    for await (const { entry, body } of readLayerTar(this.blobs.createReadStream(layer.digest), signal ? { signal } : {})) {
      if (entry.path !== rel) {
        body.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    }
    return undefined;
  }
}

const fileMemo = new Map<string, Buffer>();
const MEMO_MAX_ENTRIES = 256;
const MEMO_MAX_FILE = 1 << 20;

function hasDotDot(rel: string): boolean {
  return rel === ".." || rel.startsWith("../") || rel.endsWith("/..") || rel.includes("/../");
}

function toRel(p: string): string {
  // Already relative and clean (no leading, doubled or trailing "/", no "." component): the common case.
  if (p !== "" && p.charCodeAt(0) !== 0x2f && !p.endsWith("/") && !p.includes("//") && !p.includes("./") && !p.endsWith("/.") && p !== ".") return p;
  return p.split("/").filter((s) => s !== "" && s !== ".").join("/");
}

/** Removes every node that is in `gone` or below one, and everything below the dirs in `emptied`. */
function removeCovered(nodes: Map<string, FsNode>, gone: Set<string>, emptied: Set<string>): void {
  for (const key of nodes.keys()) {
    if (gone.has(key)) {
      nodes.delete(key);
      continue;
    }
    // Walk up the ancestors: a path goes if one of them was deleted or emptied.
    for (let slash = key.lastIndexOf("/"); slash > 0; slash = key.lastIndexOf("/", slash - 1)) {
      const ancestor = key.slice(0, slash);
      if (gone.has(ancestor) || emptied.has(ancestor)) {
        nodes.delete(key);
        break;
      }
    }
    if (emptied.has("") && key !== "") nodes.delete(key);
  }
}
