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
  resolve(p: string, depth = 0): string | undefined {
    if (depth > 40) return undefined;
    if (!this.hasSymlinks) {
      // Without symlinks resolution is lexical; a clean path (the common case) is a plain lookup.
      const rel = toRel(p);
      if (!rel.split("/").includes("..")) return rel === "" || this.nodes.has(rel) ? rel : undefined;
    }
    const parts = toRel(p).split("/").filter((s) => s !== "");
    let current: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (part === ".") continue;
      if (part === "..") {
        current.pop();
        continue;
      }
      const candidate = [...current, part].join("/");
      const node = this.nodes.get(candidate);
      if (node?.type === "symlink" && node.linkname !== undefined) {
        const target = node.linkname.startsWith("/") ? node.linkname : [...current, node.linkname].join("/");
        const rest = parts.slice(i + 1).join("/");
        return this.resolve(rest ? `${target}/${rest}` : target, depth + 1);
      }
      current = [...current, part];
    }
    const rel = current.join("/");
    return rel === "" || this.nodes.has(rel) ? rel : undefined;
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
