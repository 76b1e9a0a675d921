import { createWriteStream } from "node:fs";
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, realpath, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { ExtractError, LayerError, UnsafePathError } from "./errors.js";
import { makeNode, setXattr } from "./exec.js";
import { resolveDirInRoot, safeComponents } from "./resolve.js";
import { readLayerTar } from "./tar-reader.js";
import type { LayerEntry } from "./types.js";
import { parseWhiteout } from "./whiteout.js";

/**
 * - "apply": the layer is unpacked onto the lower layers' tree; `.wh.x` deletes x, `.wh..wh..opq` deletes
 *   the directory's lower children (entries from this layer survive whatever the order in the tar).
 * - "keep": whiteout files are extracted as ordinary empty files.
 * - "overlay": the tree becomes an overlayfs lower/upper dir: whiteouts become 0/0 character devices and
 *   opaque markers the `trusted.overlay.opaque=y` xattr (both need root).
 */
export type WhiteoutMode = "apply" | "keep" | "overlay";

export interface ExtractLayerOptions {
  whiteouts?: WhiteoutMode;
  /** Create char/block device nodes (only honoured when running as root; otherwise they are skipped). */
  allowDevices?: boolean;
  signal?: AbortSignal;
}

export interface ExtractLayerResult {
  /** Entries materialised (whiteouts included). */
  entries: number;
  /** Entries or attributes that could not be applied here (devices without privilege, unsupported xattrs). */
  skipped: { path: string; reason: string }[];
}

interface DirMeta {
  host: string;
  mode: number;
  mtimeMs: number;
}

/**
 * Extracts a (possibly compressed) layer tar into `destDir`, refusing every entry that would land
 * outside it (UnsafePathError naming the entry): absolute names, ".." components, parent paths whose
 * symlinks climb out of the root, hardlinks to targets outside or not yet extracted. Symlinks in parent
 * paths are resolved inside the root (chroot semantics); the final component is never followed.
 * Ownership (when root), modes (after chown, so setuid survives), mtimes and xattrs are applied;
 * directory modes and mtimes are applied last so adding children cannot disturb them.
 */
export async function extractLayer(
  stream: NodeJS.ReadableStream,
  destDir: string,
  options: ExtractLayerOptions = {},
): Promise<ExtractLayerResult> {
  const mode = options.whiteouts ?? "apply";
  const { signal } = options;
  await mkdir(destDir, { recursive: true });
  const root = await realpath(destDir);
  const isRoot = process.getuid?.() === 0;
  const written = new Set<string>(); // host paths this layer created
  const dirs: DirMeta[] = [];
  const result: ExtractLayerResult = { entries: 0, skipped: [] };

  const extractOne = async (entry: LayerEntry, body: NodeJS.ReadableStream): Promise<void> => {
    const parts = safeComponents(entry.path);
    if (parts.length === 0) return; // the layer root itself ("./"): destDir's own metadata is left alone
    const rel = parts.join("/");
    const name = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);

    const wo = mode === "keep" ? null : parseWhiteout(rel);
    if (wo?.kind === "meta") return; // AUFS bookkeeping (.wh..wh.plnk etc.), never content
    if (wo?.kind === "opaque") {
      if (mode === "apply") {
        const dir = await resolveDirInRoot(root, parentParts, entry.path, false);
        if (dir !== null) await clearLower(dir, written);
      } else {
        const dir = await resolveDirInRoot(root, parentParts, entry.path, true);
        await setXattr(dir!, "trusted.overlay.opaque", Buffer.from("y"), signal);
      }
      result.entries++;
      return;
    }
    if (wo?.kind === "whiteout") {
      const target = name.slice(".wh.".length);
      // ".wh.." / ".wh..." would name the parent itself or its parent: never a lower-layer entry.
      if (target === "" || target === "." || target === ".." || target.includes("/")) {
        throw new UnsafePathError(entry.path, "whiteout does not name an entry");
      }
      const parent = await resolveDirInRoot(root, parentParts, entry.path, mode === "overlay");
      if (parent !== null) {
        const host = join(parent, target);
        if (!written.has(host)) await rm(host, { recursive: true, force: true });
        if (mode === "overlay") {
          if (!isRoot) throw new ExtractError(entry.path, "overlay whiteouts are device nodes and need root");
          await makeNode(host, "char", 0, 0, signal);
          written.add(host);
        }
      }
      result.entries++;
      return;
    }

    const parent = (await resolveDirInRoot(root, parentParts, entry.path, true))!;
    const host = join(parent, name);
    if ((entry.type === "char" || entry.type === "block") && !(options.allowDevices && isRoot)) {
      result.skipped.push({ path: rel, reason: "device nodes need allowDevices and root" });
      return;
    }
    let hardlinkTarget: string | undefined;
    if (entry.type === "hardlink") hardlinkTarget = await resolveHardlinkTarget(root, entry);

    await clearForEntry(host, entry);
    await create(host, entry, body, hardlinkTarget, signal);
    written.add(host);
    result.entries++;
    if (entry.type === "hardlink") return; // shares the target's inode and metadata

    if (isRoot) await lchown(host, entry.uid, entry.gid);
    for (const [key, value] of Object.entries(entry.xattrs ?? {})) {
      try {
        await setXattr(host, key, value, signal);
      } catch (err) {
        result.skipped.push({ path: rel, reason: `xattr ${key}: ${(err as Error).message}` });
      }
    }
    if (entry.type === "dir") {
      dirs.push({ host, mode: entry.mode, mtimeMs: entry.mtimeMs });
      return;
    }
    if (entry.type !== "symlink") await chmod(host, entry.mode & 0o7777); // after chown: chown clears setuid
    const t = entry.mtimeMs / 1000;
    await lutimes(host, t, t);
  };

  for await (const { entry, body } of readLayerTar(stream, signal ? { signal } : {})) {
    signal?.throwIfAborted();
    try {
      await extractOne(entry, body);
    } catch (err) {
      if (err instanceof LayerError || signal?.aborted) throw err;
      throw new ExtractError(entry.path, (err as Error).message, { cause: err });
    }
  }

  // Deepest first, so restoring a parent's mtime is not undone by touching a child.
  for (const d of dirs.reverse()) {
    const st = await lstat(d.host).catch(() => null);
    if (!st?.isDirectory()) continue;
    await chmod(d.host, d.mode & 0o7777);
    await lutimes(d.host, d.mtimeMs / 1000, d.mtimeMs / 1000);
  }
  return result;
}

async function resolveHardlinkTarget(root: string, entry: LayerEntry): Promise<string> {
  const link = entry.linkname ?? "";
  let parts: string[];
  try {
    parts = safeComponents(link);
  } catch {
    throw new UnsafePathError(entry.path, `hardlink target ${JSON.stringify(link)} is outside the destination`);
  }
  if (parts.length === 0) throw new UnsafePathError(entry.path, "hardlink to the layer root");
  const dir = await resolveDirInRoot(root, parts.slice(0, -1), entry.path, false);
  const target = dir === null ? null : join(dir, parts[parts.length - 1]!);
  const st = target === null ? null : await lstat(target).catch(() => null);
  if (target === null || st === null) {
    throw new UnsafePathError(entry.path, `hardlink target ${JSON.stringify(link)} has not been extracted`);
  }
  if (st.isDirectory()) throw new UnsafePathError(entry.path, `hardlink target ${JSON.stringify(link)} is a directory`);
  return target;
}

/** Whatever exists at the path is replaced, except a directory being re-declared as a directory. */
async function clearForEntry(host: string, entry: LayerEntry): Promise<void> {
  const st = await lstat(host).catch(() => null);
  if (st === null) return;
  if (st.isDirectory() && entry.type === "dir") return;
  await rm(host, { recursive: true, force: true });
}

async function create(
  host: string,
  entry: LayerEntry,
  body: NodeJS.ReadableStream,
  hardlinkTarget: string | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  switch (entry.type) {
    case "dir": {
      const st = await lstat(host).catch(() => null);
      if (!st) await mkdir(host, { mode: 0o700 });
      return;
    }
    case "file":
      // "wx" is O_CREAT|O_EXCL: never writes through a symlink planted at the final component.
      await pipeline(body, createWriteStream(host, { flags: "wx", mode: 0o600 }), signal ? { signal } : {});
      return;
    case "symlink":
      await symlink(entry.linkname ?? "", host);
      return;
    case "hardlink":
      await link(hardlinkTarget!, host);
      return;
    case "char":
    case "block":
      await makeNode(host, entry.type, entry.devmajor ?? 0, entry.devminor ?? 0, signal);
      return;
    case "fifo":
      await makeNode(host, "fifo", 0, 0, signal);
      return;
  }
}

/** Opaque directory in "apply" mode: removes lower children, keeping (and descending into) this layer's. */
async function clearLower(dir: string, written: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    const host = join(dir, name);
    if (!written.has(host)) {
      await rm(host, { recursive: true, force: true });
      continue;
    }
    const st = await lstat(host);
    if (st.isDirectory()) await clearLower(host, written);
  }
}
