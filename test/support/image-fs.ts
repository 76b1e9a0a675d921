/**
 * The differential-test harness: read an image archive (docker save / OCI layout), flatten its layers
 * into a filesystem view (this module), and diff two images (image-diff.ts).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { ImageFormatError } from "./errors.js";
import { readImageArchive, type ImageArchive, type ReadArchiveOptions } from "./image-archive.js";
import { readTar, type TarEntryType } from "./tar.js";
import { requireTool } from "./tools.js";

export * from "./image-archive.js";
export * from "./image-diff.js";


export interface FsEntry {
  type: Exclude<TarEntryType, "hardlink">;
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only (0 otherwise). */
  size: number;
  /** sha256 hex of a regular file's content. */
  sha256?: string;
  /** Symlink target. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
}

/** Absolute, normalised path of an image filesystem entry ("/etc/passwd"). */
export type FsView = Map<string, FsEntry>;

/** Detect gzip / zstd by magic number and return the uncompressed stream. */
async function* decompress(raw: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = raw[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = Buffer.from(first.value);
  async function* replay(): AsyncGenerator<Buffer> {
    yield head;
    for (let r = await it.next(); !r.done; r = await it.next()) yield Buffer.from(r.value);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    yield* Readable.from(replay()).pipe(createGunzip()) as AsyncIterable<Buffer>;
  } else if (head.readUInt32LE(0) === 0xfd2fb528) {
    const child = spawn(requireTool("zstd"), ["-dc"], { stdio: ["pipe", "pipe", "inherit"] });
    Readable.from(replay()).pipe(child.stdin);
    yield* child.stdout as AsyncIterable<Buffer>;
  } else {
    yield* replay();
  }
}

/** Tee a stream through sha256; `digest()` is valid after the stream ended. */
function hashing(src: AsyncIterable<Buffer>): { stream: AsyncIterable<Buffer>; digest: () => string } {
  const h = createHash("sha256");
  let done = false;
  let hex: string | undefined;
  return {
    stream: (async function* () {
      for await (const c of src) {
        h.update(c);
        yield c;
      }
      done = true;
    })(),
    digest: () => {
      if (!done) throw new Error("digest read before stream end");
      hex ??= h.digest("hex");
      return "sha256:" + hex;
    },
  };
}

const toAbs = (p: string): string => {
  const n = path.posix.normalize("/" + p.replace(/^\.\/?/, ""));
  return n.length > 1 ? n.replace(/\/$/, "") : n;
};

function removeTree(view: FsView, p: string): void {
  view.delete(p);
  const prefix = p === "/" ? "/" : p + "/";
  for (const k of view.keys()) if (k.startsWith(prefix)) view.delete(k);
}

function addParents(view: FsView, p: string): void {
  for (let d = path.posix.dirname(p); d !== "/" && !view.has(d); d = path.posix.dirname(d)) {
    // Extraction creates missing parents the same way.
    view.set(d, { type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0 });
  }
}

export interface FlattenOptions {
  /** Check each layer's uncompressed digest against its diffID and stored digest (default true). */
  verify?: boolean;
  signal?: AbortSignal;
}

/**
 * Apply the layers in order (OCI whiteouts and opaque dirs included) and return the resulting
 * filesystem. File contents are hashed as they stream; only metadata is kept. mtimes are ignored.
 */
export async function flattenImage(image: ImageArchive, opts: FlattenOptions = {}): Promise<FsView> {
  const verify = opts.verify ?? true;
  const view: FsView = new Map();
  for (const layer of image.layers) {
    const stored = hashing(layer.open());
    const plain = hashing(decompress(stored.stream));
    const adds: [string, FsEntry | { hardlink: string }][] = [];
    const whiteouts: string[] = [];
    const opaque: string[] = [];
    for await (const { header, body } of readTar(plain.stream)) {
      opts.signal?.throwIfAborted();
      const p = toAbs(header.path);
      const base = path.posix.basename(p);
      const dir = path.posix.dirname(p);
      if (base === ".wh..wh..opq") {
        opaque.push(dir);
        continue;
      }
      if (base.startsWith(".wh.")) {
        whiteouts.push(path.posix.join(dir, base.slice(4)));
        continue;
      }
      if (p === "/") continue; // the root's own metadata is not part of the comparison
      if (header.type === "hardlink") {
        adds.push([p, { hardlink: toAbs(header.linkname) }]);
        continue;
      }
      const entry: FsEntry = { type: header.type, mode: header.mode, uid: header.uid, gid: header.gid, size: 0 };
      if (header.type === "file") {
        const h = createHash("sha256");
        let size = 0;
        for await (const c of body) {
          h.update(c);
          size += c.length;
        }
        entry.size = size;
        entry.sha256 = h.digest("hex");
      } else if (header.type === "symlink") entry.linkname = header.linkname;
      else if (header.type === "char" || header.type === "block") {
        entry.devmajor = header.devmajor;
        entry.devminor = header.devminor;
      }
      if (Object.keys(header.xattrs).length) entry.xattrs = header.xattrs;
      adds.push([p, entry]);
    }
    if (verify) {
      if (plain.digest() !== layer.diffID) {
        throw new ImageFormatError(`layer ${layer.digest}: uncompressed digest ${plain.digest()} != diffID ${layer.diffID}`);
      }
      if (stored.digest() !== layer.digest) {
        throw new ImageFormatError(`layer blob digest ${stored.digest()} != ${layer.digest}`);
      }
    }
    // Whiteouts hide lower layers only, so apply them before this layer's own entries.
    for (const d of opaque) {
      const prefix = d === "/" ? "/" : d + "/";
      for (const k of view.keys()) if (k.startsWith(prefix)) view.delete(k);
    }
    for (const w of whiteouts) removeTree(view, w);
    for (const [p, e] of adds) {
      let entry: FsEntry;
      if ("hardlink" in e) {
        const target = view.get(e.hardlink) ?? adds.find(([q]) => q === e.hardlink)?.[1];
        if (!target || "hardlink" in target) throw new ImageFormatError(`hardlink ${p} -> missing ${e.hardlink}`);
        // A hard link is another name for the same file: compare it by content and metadata.
        entry = { ...target };
      } else entry = e;
      const prev = view.get(p);
      if (prev?.type === "dir" && entry.type !== "dir") removeTree(view, p);
      addParents(view, p);
      view.set(p, entry);
    }
  }
  return view;
}

export interface LoadedImage extends ImageArchive {
  files: FsView;
}

/** readImageArchive + flattenImage. */
export async function loadImage(p: string, opts: ReadArchiveOptions & FlattenOptions = {}): Promise<LoadedImage> {
  const archive = await readImageArchive(p, opts);
  return { ...archive, files: await flattenImage(archive, opts) };
}
