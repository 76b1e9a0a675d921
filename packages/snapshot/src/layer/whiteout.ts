import type { LayerEntry } from "./types.js";
import { OPAQUE_WHITEOUT, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX, joinPath, normalizeLayerPath, splitPath } from "./path.js";

export interface WhiteoutOptions {
  mtimeMs?: number;
}

/**
 * OCI whiteout for `path`: an empty regular file `dir/.wh.name`, mode 0, owned by root — the shape
 * containerd's and BuildKit's differs write.
 */
export function whiteoutEntry(path: string, options: WhiteoutOptions = {}): LayerEntry {
  const { dir, base } = splitPath(normalizeLayerPath(path));
  return markerEntry(joinPath(dir, WHITEOUT_PREFIX + base), options);
}

/** OCI opaque whiteout for directory `dir`: hides every lower-layer entry below it. */
export function opaqueEntry(dir: string, options: WhiteoutOptions = {}): LayerEntry {
  return markerEntry(joinPath(normalizeLayerPath(dir), OPAQUE_WHITEOUT), options);
}

function markerEntry(path: string, options: WhiteoutOptions): LayerEntry {
  return { path, type: "file", mode: 0, uid: 0, gid: 0, mtimeMs: options.mtimeMs ?? 0, size: 0 };
}

export type WhiteoutKind =
  | { kind: "whiteout"; dir: string; target: string }
  | { kind: "opaque"; dir: string }
  | { kind: "meta"; dir: string }
  | null;

/** Classifies a normalized layer path as a whiteout, an opaque marker, another AUFS meta file, or none. */
export function parseWhiteout(path: string): WhiteoutKind {
  const { dir, base } = splitPath(path);
  if (!base.startsWith(WHITEOUT_PREFIX)) return null;
  if (base === OPAQUE_WHITEOUT) return { kind: "opaque", dir };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: "meta", dir };
  return { kind: "whiteout", dir, target: joinPath(dir, base.slice(WHITEOUT_PREFIX.length)) };
}
