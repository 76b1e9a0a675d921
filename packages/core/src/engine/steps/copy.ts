// COPY and ADD from the build context (and heredocs): resolve sources, digest them for the cache key,
// and on a miss plan the layer and write it.
import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import os from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import {
  BuildContext,
  NotAnArchiveError,
  containsWildcards,
  goClean,
  type ChangedLayerFile,
  extractLayer,
  detectArchive,
  isExcludedBy,
  type ContextEntry,
  type LayerEntryType,
  type ResolvedMatch,
  type SourceFile,
} from "@kiln/snapshot";
import type { AddInstruction, CopyInstruction } from "../../dockerfile/instructions.js";
import type { CopyNode, CopySource } from "./copy-plan.js";
import { canonicalJson } from "../cache-key.js";

export class CopySourceError extends Error {
  override readonly name = "CopySourceError";
}

/**
 * Files from the context are owned by root in the image unless --chown says otherwise (as docker build);
 * files from a stage or image keep their owners. `prefix` is `root` with a trailing "/".
 */
function nodeFromEntry(root: string, prefix: string, rel: string, entry: ContextEntry, preserveOwnership: boolean, fingerprintOf?: (path: string) => string | undefined): CopyNode | undefined {
  const uid = preserveOwnership ? entry.uid : 0;
  const gid = preserveOwnership ? entry.gid : 0;
  switch (entry.type) {
    case "file": {
      // rel is a clean context-relative path: plain concatenation (path.join per file shows up with 20k files).
      // No open() closure per file: the layer writers read sourcePath directly.
      const sourcePath = rel === "" ? root : prefix + rel;
      // The entry digest (content + metadata, from the stat cache) lets the layer writer reuse unchanged parts.
      const fingerprint = fingerprintOf?.(entry.path);
      // One literal with every field (tens of thousands of these): no shape changes after it is made.
      if (fingerprint !== undefined) return { type: "file", mode: entry.mode, uid, gid, mtimeMs: entry.mtimeMs, size: entry.size, sourcePath, fingerprint };
      return { type: "file", mode: entry.mode, uid, gid, mtimeMs: entry.mtimeMs, size: entry.size, sourcePath };
    }
    case "dir":
      return { type: "dir", mode: entry.mode, uid, gid, mtimeMs: entry.mtimeMs };
    case "symlink": {
      const node: CopyNode = { type: "symlink", mode: entry.mode, uid, gid, mtimeMs: entry.mtimeMs };
      if (entry.linkname !== undefined) node.linkname = entry.linkname;
      return node;
    }
    default:
      return undefined;
  }
}

function sourceFromMatch(ctx: BuildContext, m: Omit<ResolvedMatch, "contents"> & { contents: Iterable<SourceFile> }, excludes: string[], preserveOwnership: boolean, fingerprintOf?: (path: string) => string | undefined): CopySource | undefined {
  const prefix = ctx.root.endsWith("/") ? ctx.root : `${ctx.root}/`;
  const node = nodeFromEntry(ctx.root, prefix, m.resolvedPath, m.entry, preserveOwnership, fingerprintOf);
  if (!node) return undefined;
  const source: CopySource = { path: m.name || m.path, node };
  if (node.type === "dir") {
    const children: { rel: string; node: CopyNode }[] = [];
    const under = m.resolvedPath === "" ? "" : `${m.resolvedPath}/`;
    for (const c of m.contents) {
      if (excludes.length > 0 && isExcludedBy(c.relPath, excludes)) continue;
      const child = nodeFromEntry(ctx.root, prefix, under === "" ? c.relPath : under + c.relPath, c.entry, preserveOwnership, fingerprintOf);
      if (child) children.push({ rel: c.relPath, node: child });
    }
    source.children = children;
  }
  return source;
}

export interface ResolvedCopySources {
  /** One digest over every source (paths as the destination sees them, content, mode; never mtime). */
  digest: string;
  /** Per-path digests, for explaining a miss. */
  paths: Record<string, string>;
  /** `paths` as canonical JSON text (what a step record stores as its files index). */
  pathsJson(): string;
  /** Builds the copy sources on a miss; `cleanup` removes temp files (extracted archives). */
  load(signal?: AbortSignal): Promise<{ sources: CopySource[]; cleanup: () => Promise<void> }>;
}

function heredocSources(instr: CopyInstruction | AddInstruction, mtimeMs: number): CopySource[] {
  return instr.contents.map((c) => {
    const data = Buffer.from(c.data);
    return {
      path: c.path,
      node: { type: "file" as const, mode: 0o644, uid: 0, gid: 0, mtimeMs, size: data.length, open: () => Readable.from([data]) },
    };
  });
}

function isUrl(src: string): boolean {
  return /^https?:\/\//i.test(src);
}

/**
 * The files this build read from the context (changed since the stat cache saw them) as layer entries of a
 * COPY into `destDir`, plus the destination's directories (stamped with the newest mtime copied, or the
 * SOURCE_DATE_EPOCH time `epochMs`): the input of a diffID speculation (part-speculation.ts). Undefined
 * unless the instruction copies one plain directory and nothing else.
 */
export function changedContextFiles(ctx: BuildContext, instr: CopyInstruction | AddInstruction, destDir: string, epochMs: number | undefined): ChangedLayerFile[] | undefined {
  const localSources = instr.sources.filter((s) => !isUrl(s));
  const single = instr.kind === "copy" && localSources.length === 1 && instr.sources.length === 1 && instr.contents.length === 0 && instr.excludes.length === 0;
  if (!single) return undefined;
  const src = goClean(`/${localSources[0] as string}`).slice(1);
  if (containsWildcards(src) || ctx.get(src)?.type !== "dir") return undefined;
  const under = src === "" ? "" : `${src}/`;
  const base = destDir.replace(/^\/+|\/+$/g, "");
  const out: ChangedLayerFile[] = [];
  const stamp = epochMs ?? ctx.newestMtimeMs(src);
  if (stamp === undefined) return undefined;
  if (base !== "") {
    for (let end = base.indexOf("/"); ; end = base.indexOf("/", end + 1)) {
      out.push({ type: "dir", path: end < 0 ? base : base.slice(0, end), mtimeMs: stamp });
      if (end < 0) break;
    }
  }
  for (const p of ctx.contentReads()) {
    if (!p.startsWith(under)) continue;
    const e = ctx.get(p);
    if (e?.type !== "file") continue;
    const rel = p.slice(under.length);
    out.push({ type: "file", path: base === "" ? rel : `${base}/${rel}`, size: e.size, mtimeMs: e.mtimeMs, sourcePath: path.join(ctx.root, p) });
  }
  return out;
}

/** Resolves the sources of a COPY/ADD against the build context. */
export async function resolveContextSources(
  ctx: BuildContext,
  instr: CopyInstruction | AddInstruction,
  /** mtime of heredoc files (no source has one). */
  createdMtimeMs: number,
  options: {
    preserveOwnership?: boolean;
    /** Awaited once the changed files are read, before the rest of the digest (see BuildContext.digestSources). */
    afterReads?: () => Promise<void> | void;
  } = {},
): Promise<ResolvedCopySources> {
  const preserveOwnership = options.preserveOwnership ?? false;
  const localSources = instr.sources.filter((s) => !isUrl(s));
  const urls = instr.sources.filter(isUrl);
  if (urls.length > 0 && instr.kind === "copy") throw new CopySourceError("source can't be a URL for COPY");
  // The stat cache is saved later (BuildSession.flushContext), off the path to this step's cache lookup.
  const digested = await ctx.digestSources(localSources, { deferCacheSave: true, ...(options.afterReads ? { afterReads: options.afterReads } : {}) });
  // Per-path digests are only needed on a miss (to explain it and to record them): built when read.
  let excludedPaths: Record<string, string> | undefined;
  let sourcesDigest = digested.digest;
  if (instr.excludes.length > 0) ({ paths: excludedPaths, digest: sourcesDigest } = withoutExcluded(ctx, localSources, (p) => digested.pathDigest(p), instr.excludes));
  const hash = createHash("sha256").update(sourcesDigest);
  for (const c of instr.contents) hash.update(`\0heredoc\0${c.path}\0${c.data}`);
  for (const u of urls) hash.update(`\0url\0${u}`);
  if (instr.excludes.length > 0) hash.update(`\0exclude\0${JSON.stringify(instr.excludes)}`);
  // Entry digests include owners, so kept ownership (COPY --from) is covered; the flag itself changes the layer.
  if (preserveOwnership) hash.update("\0preserve-ownership");
  const unpack = instr.kind === "add" && (instr.unpack ?? true);
  return {
    digest: `sha256:${hash.digest("hex")}`,
    get paths() {
      return excludedPaths ?? digested.paths;
    },
    pathsJson() {
      return excludedPaths ? canonicalJson(excludedPaths) : digested.pathsJson();
    },
    async load(signal) {
      const fingerprintOf = (p: string): string | undefined => digested.pathDigest(p);
      const cleanups: string[] = [];
      const sources: CopySource[] = [];
      for (const resolved of ctx.streamSources(localSources)) {
        for (const m of resolved.matches) {
          if (unpack && m.entry.type === "file") {
            const extracted = await tryExtractArchive(path.join(ctx.root, m.resolvedPath), signal);
            if (extracted) {
              cleanups.push(extracted.dir);
              sources.push(extracted.source);
              continue;
            }
          }
          // Per-path lookups: the whole sorted `paths` record is not needed to plan the layer.
          const s = sourceFromMatch(ctx, m, instr.excludes, preserveOwnership, fingerprintOf);
          if (s) sources.push(s);
        }
      }
      for (const u of urls) {
        const dl = await downloadUrl(u, signal);
        cleanups.push(dl.dir);
        sources.push(dl.source);
      }
      sources.push(...heredocSources(instr, createdMtimeMs));
      return {
        sources,
        cleanup: async () => {
          await Promise.all(cleanups.map((d) => rm(d, { recursive: true, force: true })));
        },
      };
    },
  };
}

/** Digest and per-path digests of the sources minus what `--exclude` leaves out (relative to each source). */
function withoutExcluded(ctx: BuildContext, sources: string[], digestOf: (path: string) => string | undefined, excludes: string[]): { paths: Record<string, string>; digest: string } {
  const paths: Record<string, string> = {};
  const h = createHash("sha256").update("kiln-sources-excluded-v1\0");
  for (const r of ctx.resolveSources(sources)) {
    for (const m of r.matches) {
      const self = digestOf(m.resolvedPath);
      if (self !== undefined) paths[m.resolvedPath] = self;
      h.update(`${r.path}\0${m.name}\0${self ?? ""}\0`);
      for (const c of m.contents) {
        if (isExcludedBy(c.relPath, excludes)) continue;
        const d = digestOf(c.entry.path);
        if (d === undefined) continue;
        paths[c.entry.path] = d;
        h.update(`${c.relPath}\0${d}\0`);
      }
    }
  }
  return { paths, digest: `sha256:${h.digest("hex")}` };
}

/** ADD of a local tar (plain, gzip, bzip2, xz) extracts it; anything else is copied as it is. */
async function tryExtractArchive(file: string, signal?: AbortSignal): Promise<{ dir: string; source: CopySource } | undefined> {
  if ((await detectArchive(file, signal)) === null) return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-add-"));
  try {
    await extractLayer(createReadStream(file), dir, { whiteouts: "keep", ...(signal ? { signal } : {}) });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if (err instanceof NotAnArchiveError) return undefined;
    throw err;
  }
  const children = await walkDir(dir);
  return { dir, source: { path: path.basename(file), node: { type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 }, children } };
}

/** Extracted archives keep their owners and modes (ADD preserves them), so read them back with lstat. */
async function walkDir(root: string): Promise<{ rel: string; node: CopyNode }[]> {
  const { readdir, lstat, readlink } = await import("node:fs/promises");
  const out: { rel: string; node: CopyNode }[] = [];
  async function walk(rel: string): Promise<void> {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const abs = path.join(root, childRel);
      const st = await lstat(abs);
      const type: LayerEntryType | undefined = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFIFO() ? "fifo" : undefined;
      if (!type) continue;
      const node: CopyNode = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs };
      if (type === "file") {
        node.size = st.size;
        node.open = () => createReadStream(abs);
      }
      if (type === "symlink") node.linkname = await readlink(abs);
      out.push({ rel: childRel, node });
      if (type === "dir") await walk(childRel);
    }
  }
  await walk("");
  return out;
}

/** ADD <url>: downloads to a temp file, named after the URL's last path segment, mode 0600 as BuildKit. */
async function downloadUrl(url: string, signal?: AbortSignal): Promise<{ dir: string; source: CopySource }> {
  const res = await fetch(url, signal ? { signal } : {});
  if (!res.ok || !res.body) throw new CopySourceError(`failed to download ${url}: HTTP ${res.status}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-url-"));
  const base = path.posix.basename(new URL(url).pathname);
  const name = base && base !== "/" && base !== "." ? base : "__unnamed__";
  const file = path.join(dir, name);
  const { pipeline } = await import("node:stream/promises");
  const { createWriteStream } = await import("node:fs");
  await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>), createWriteStream(file, { mode: 0o600 }));
  const st = await stat(file);
  const lastModified = res.headers.get("last-modified");
  const mtimeMs = lastModified ? Date.parse(lastModified) || 0 : 0;
  return { dir, source: { path: name, node: { type: "file", mode: 0o600, uid: 0, gid: 0, mtimeMs, size: st.size, open: () => createReadStream(file) } } };
}
