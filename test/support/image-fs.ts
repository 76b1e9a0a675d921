/**
 * The differential-test harness: read an image archive (docker save / OCI layout), flatten its layers
 * into a filesystem view, and diff two images (config + files) into readable lines.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { openArchive, type ArchiveFiles } from "./archive.js";
import { ImageFormatError } from "./errors.js";
import { readTar, type TarEntryType } from "./tar.js";
import { requireTool } from "./tools.js";

/** The parts of an OCI / Docker image config the harness looks at; other fields pass through. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs?: { type: string; diff_ids: string[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  [key: string]: unknown;
}

export interface ImageLayer {
  /** Digest of the blob as stored (compressed for OCI, the tar itself for docker save). */
  digest: string;
  /** Digest of the uncompressed tar (config rootfs.diff_ids). */
  diffID: string;
  size: number;
  mediaType: string;
  /** The stored blob's bytes (possibly compressed). */
  open(): AsyncIterable<Buffer>;
}

export interface ImageArchive {
  format: "docker-save" | "oci-layout";
  config: ImageConfig;
  /** docker save: its manifest.json entry; OCI: the image manifest. */
  manifest: Record<string, unknown>;
  layers: ImageLayer[];
  history: HistoryEntry[];
}

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
  annotations?: Record<string, string>;
}

const blobPath = (digest: string): string => {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest);
  if (!m) throw new ImageFormatError(`bad digest ${digest}`);
  return `blobs/${m[1]}/${m[2]}`;
};

async function readJson<T>(files: ArchiveFiles, name: string): Promise<T> {
  try {
    return JSON.parse((await files.readBuffer(name)).toString("utf8")) as T;
  } catch (e) {
    throw new ImageFormatError(`cannot parse ${name}: ${(e as Error).message}`);
  }
}

export interface ReadArchiveOptions {
  /** OCI layouts with several images: pick by org.opencontainers.image.ref.name annotation. */
  ref?: string;
}

/** Read a `docker save` tar, an OCI image layout directory, or an OCI layout tar. */
export async function readImageArchive(p: string, opts: ReadArchiveOptions = {}): Promise<ImageArchive> {
  const files = await openArchive(p);
  if (await files.has("manifest.json")) return readDockerSave(files);
  if (await files.has("index.json")) return readOciLayout(files, opts);
  throw new ImageFormatError(`${p}: neither a docker save archive (manifest.json) nor an OCI layout (index.json)`);
}

async function readDockerSave(files: ArchiveFiles): Promise<ImageArchive> {
  const entries = await readJson<{ Config: string; RepoTags?: string[]; Layers: string[] }[]>(files, "manifest.json");
  const m = entries[0];
  if (!m || entries.length !== 1) throw new ImageFormatError(`docker save archive holds ${entries.length} images, expected 1`);
  const config = await readJson<ImageConfig>(files, m.Config);
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== m.Layers.length) {
    throw new ImageFormatError(`config lists ${diffIDs.length} diff_ids but the archive has ${m.Layers.length} layers`);
  }
  const layers = await Promise.all(
    m.Layers.map(async (name, i): Promise<ImageLayer> => ({
      // Old docker save stores layers uncompressed (the stored digest is the diffID); the OCI-style
      // archive (Docker 25+, kiln) names each layer by its blob digest, compressed or not.
      digest: /^blobs\/sha256\/[a-f0-9]{64}$/.test(name) ? `sha256:${name.slice("blobs/sha256/".length)}` : diffIDs[i]!,
      diffID: diffIDs[i]!,
      size: await files.size(name),
      mediaType: "application/vnd.docker.image.rootfs.diff.tar",
      open: () => files.open(name),
    })),
  );
  return { format: "docker-save", config, manifest: m as unknown as Record<string, unknown>, layers, history: config.history ?? [] };
}

async function readOciLayout(files: ArchiveFiles, opts: ReadArchiveOptions): Promise<ImageArchive> {
  let desc = pickManifest(await readJson<{ manifests: Descriptor[] }>(files, "index.json"), opts, "index.json");
  // Descend through nested indexes (a multi-platform image) to one image manifest.
  for (let depth = 0; desc.mediaType === OCI_INDEX || desc.mediaType === DOCKER_LIST; depth++) {
    if (depth > 4) throw new ImageFormatError("index nesting too deep");
    desc = pickManifest(await readJson<{ manifests: Descriptor[] }>(files, blobPath(desc.digest)), {}, desc.digest);
  }
  const manifest = await readJson<{ config: Descriptor; layers: Descriptor[] }>(files, blobPath(desc.digest));
  const config = await readJson<ImageConfig>(files, blobPath(manifest.config.digest));
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== manifest.layers.length) {
    throw new ImageFormatError(`config lists ${diffIDs.length} diff_ids but the manifest has ${manifest.layers.length} layers`);
  }
  const layers = manifest.layers.map(
    (l, i): ImageLayer => ({
      digest: l.digest,
      diffID: diffIDs[i]!,
      size: l.size ?? 0,
      mediaType: l.mediaType ?? "",
      open: () => files.open(blobPath(l.digest)),
    }),
  );
  return {
    format: "oci-layout",
    config,
    manifest: manifest as unknown as Record<string, unknown>,
    layers,
    history: config.history ?? [],
  };
}

function pickManifest(index: { manifests: Descriptor[] }, opts: ReadArchiveOptions, where: string): Descriptor {
  const ms = index.manifests ?? [];
  if (opts.ref) {
    const hit = ms.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === opts.ref);
    if (!hit) throw new ImageFormatError(`${where}: no manifest named ${opts.ref}`);
    return hit;
  }
  const linux = ms.filter((m) => !m.platform || (m.platform.os === "linux" && m.platform.architecture !== "unknown"));
  const amd64 = linux.find((m) => m.platform?.architecture === "amd64");
  const pick = amd64 ?? linux[0] ?? ms[0];
  if (!pick) throw new ImageFormatError(`${where}: no manifests`);
  return pick;
}

// ---------------------------------------------------------------------------------------------------
// Flattening

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

// ---------------------------------------------------------------------------------------------------
// Diffing

export const COMPARED_CONFIG_FIELDS = [
  "Env",
  "Cmd",
  "Entrypoint",
  "WorkingDir",
  "User",
  "ExposedPorts",
  "Volumes",
  "Labels",
  "StopSignal",
  "Healthcheck",
  "Shell",
  "OnBuild",
] as const;

export interface DiffOptions {
  /** Config fields (names from COMPARED_CONFIG_FIELDS, or "os"/"architecture") to leave out. */
  ignoreConfigFields?: string[];
  /** Paths to leave out: an exact path also excludes its subtree; a RegExp is tested against the path. */
  ignorePaths?: (string | RegExp)[];
  /** Also compare history (created_by and empty_layer, in order). Off by default: tools word it differently. */
  history?: boolean;
  /** Names for the two sides in messages (default "a", "b"). */
  labels?: [string, string];
}

export interface DiffableImage {
  config: ImageConfig;
  files: FsView;
  history?: HistoryEntry[];
}

/** Drop null, "", empty arrays and empty objects (tools differ in which they write) and sort keys. */
function normalizeValue(v: unknown): unknown {
  if (v === null || v === undefined || v === "") return undefined;
  if (Array.isArray(v)) return v.length ? v.map((x) => normalizeValue(x) ?? null) : undefined;
  if (typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) o[k] = normalizeValue((v as Record<string, unknown>)[k]) ?? null;
    return Object.keys(o).length ? o : undefined;
  }
  return v;
}

function canonical(v: unknown): string | undefined {
  const n = normalizeValue(v);
  return n === undefined ? undefined : JSON.stringify(n);
}

const octal = (m: number): string => m.toString(8).padStart(4, "0");

function describe(e: FsEntry): string {
  switch (e.type) {
    case "file":
      return `file ${octal(e.mode)} ${e.uid}:${e.gid} ${e.size}B sha256:${e.sha256?.slice(0, 12)}`;
    case "symlink":
      return `symlink -> ${e.linkname}`;
    case "char":
    case "block":
      return `${e.type} ${e.devmajor},${e.devminor} ${octal(e.mode)} ${e.uid}:${e.gid}`;
    default:
      return `${e.type} ${octal(e.mode)} ${e.uid}:${e.gid}`;
  }
}

function entryDiffs(a: FsEntry, b: FsEntry): string[] {
  const out: string[] = [];
  if (a.type !== b.type) return [`type ${a.type} vs ${b.type}`];
  // Symlink permission bits are meaningless on Linux and differ between tar writers.
  if (a.type !== "symlink" && a.mode !== b.mode) out.push(`mode ${octal(a.mode)} vs ${octal(b.mode)}`);
  if (a.uid !== b.uid || a.gid !== b.gid) out.push(`owner ${a.uid}:${a.gid} vs ${b.uid}:${b.gid}`);
  if (a.type === "file" && (a.size !== b.size || a.sha256 !== b.sha256)) {
    out.push(`content ${a.size}B sha256:${a.sha256?.slice(0, 12)} vs ${b.size}B sha256:${b.sha256?.slice(0, 12)}`);
  }
  if (a.linkname !== b.linkname) out.push(`target ${a.linkname} vs ${b.linkname}`);
  if (a.devmajor !== b.devmajor || a.devminor !== b.devminor) {
    out.push(`device ${a.devmajor},${a.devminor} vs ${b.devmajor},${b.devminor}`);
  }
  if (canonical(a.xattrs) !== canonical(b.xattrs)) out.push(`xattrs ${canonical(a.xattrs)} vs ${canonical(b.xattrs)}`);
  return out;
}

/**
 * Differences between two images as readable lines, empty when they match:
 *   config.Env: a=["PATH=/bin"] b=["PATH=/usr/bin"]
 *   /etc/motd: only in a (file 0644 0:0 12B sha256:…)
 *   /bin/sh: mode 0755 vs 0775
 */
export function diffImages(a: DiffableImage, b: DiffableImage, opts: DiffOptions = {}): string[] {
  const [la, lb] = opts.labels ?? ["a", "b"];
  const ignoredFields = new Set(opts.ignoreConfigFields ?? []);
  const out: string[] = [];
  for (const f of ["os", "architecture"]) {
    if (ignoredFields.has(f)) continue;
    const va = canonical(a.config[f]);
    const vb = canonical(b.config[f]);
    if (va !== vb) out.push(`${f}: ${la}=${va} ${lb}=${vb}`);
  }
  for (const f of COMPARED_CONFIG_FIELDS) {
    if (ignoredFields.has(f)) continue;
    const va = canonical(a.config.config?.[f]);
    const vb = canonical(b.config.config?.[f]);
    if (va !== vb) out.push(`config.${f}: ${la}=${va} ${lb}=${vb}`);
  }
  if (opts.history) {
    const ha = (a.history ?? a.config.history ?? []).map((h) => `${h.empty_layer ? "(empty) " : ""}${h.created_by ?? ""}`);
    const hb = (b.history ?? b.config.history ?? []).map((h) => `${h.empty_layer ? "(empty) " : ""}${h.created_by ?? ""}`);
    for (let i = 0; i < Math.max(ha.length, hb.length); i++) {
      if (ha[i] !== hb[i]) out.push(`history[${i}]: ${la}=${JSON.stringify(ha[i])} ${lb}=${JSON.stringify(hb[i])}`);
    }
  }
  const ignored = (p: string): boolean =>
    (opts.ignorePaths ?? []).some((m) => (typeof m === "string" ? p === m || p.startsWith(m.replace(/\/$/, "") + "/") : m.test(p)));
  const paths = [...new Set([...a.files.keys(), ...b.files.keys()])].filter((p) => !ignored(p)).sort();
  for (const p of paths) {
    const ea = a.files.get(p);
    const eb = b.files.get(p);
    if (!eb) out.push(`${p}: only in ${la} (${describe(ea!)})`);
    else if (!ea) out.push(`${p}: only in ${lb} (${describe(eb)})`);
    else for (const d of entryDiffs(ea, eb)) out.push(`${p}: ${d}`);
  }
  return out;
}
