import { LayerEntryError } from "./errors.js";

export const WHITEOUT_PREFIX = ".wh.";
export const WHITEOUT_META_PREFIX = ".wh..wh.";
export const OPAQUE_WHITEOUT = ".wh..wh..opq";

/**
 * Canonical in-layer path: strips leading "/" and "./" and trailing "/", rejects "", ".", "..",
 * empty or "." components in the middle, and NUL bytes, so two spellings never name one entry.
 */
export function normalizeLayerPath(raw: string): string {
  if (isCanonicalLayerPath(raw)) return raw;
  let p = raw;
  while (p.startsWith("./")) p = p.slice(2);
  p = p.replace(/^\/+/, "").replace(/\/+$/, "");
  if (p === "" || p === ".") throw new LayerEntryError(raw, "empty path (the layer root is implicit)");
  if (p.includes("\0")) throw new LayerEntryError(raw, "path contains a NUL byte");
  for (const part of p.split("/")) {
    if (part === "" || part === "." || part === "..") {
      throw new LayerEntryError(raw, `path component ${JSON.stringify(part)} is not allowed`);
    }
  }
  return p;
}

/** True when `p` is already canonical (the common case: callers build paths by joining clean names). */
function isCanonicalLayerPath(p: string): boolean {
  if (p.length === 0) return false;
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    const c = i < p.length ? p.charCodeAt(i) : 0x2f;
    if (c === 0) return false;
    if (c !== 0x2f) continue;
    const len = i - start;
    if (len === 0) return false;
    if (len <= 2 && p.charCodeAt(start) === 0x2e && (len === 1 || p.charCodeAt(start + 1) === 0x2e)) return false;
    start = i + 1;
  }
  return true;
}

/**
 * layerSortKey as a string ("/" → NUL). Comparing two such strings by UTF-16 code units gives the same
 * order as comparing their keys' UTF-8 bytes unless a string holds surrogates (astral characters): callers
 * check `hasSurrogates` and fall back to the byte keys then.
 */
export function layerSortString(path: string): string {
  const slash = path.lastIndexOf("/");
  const base = path.slice(slash + 1);
  const keyPath = base === OPAQUE_WHITEOUT ? (slash < 0 ? "" : `${path.slice(0, slash)}/`) : path;
  return keyPath.replaceAll("/", "\0");
}

export const hasSurrogates = (s: string): boolean => /[\ud800-\udfff]/.test(s);

/**
 * Sort key implementing the layer entry order: paths compare component by component, each component
 * by its UTF-8 bytes (no locale, no UTF-16 code-unit order), a prefix before its extensions. Equivalent
 * to byte order on the UTF-8 path with "/" ranked below every other byte, so parents precede children and
 * a directory's subtree is contiguous ("a", "a/b", "a-b") — the order Go's filepath.Walk, and so
 * BuildKit's differ, visits a tree. One refinement: an opaque marker `d/.wh..wh..opq` sorts right after
 * `d` and before every other child of `d`, so a streaming extractor clears lower entries before this
 * layer's own children arrive.
 */
export function layerSortKey(path: string): Buffer {
  const slash = path.lastIndexOf("/");
  const base = path.slice(slash + 1);
  const dir = slash < 0 ? "" : path.slice(0, slash);
  const keyPath = base === OPAQUE_WHITEOUT ? (dir === "" ? "" : `${dir}/`) : path;
  // "/" -> 0x00 makes a plain byte compare rank the separator lowest; NUL cannot occur in a path.
  return Buffer.from(keyPath.replaceAll("/", "\0"), "utf8");
}

export function splitPath(path: string): { dir: string; base: string } {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? { dir: "", base: path } : { dir: path.slice(0, slash), base: path.slice(slash + 1) };
}

export function joinPath(dir: string, base: string): string {
  return dir === "" ? base : `${dir}/${base}`;
}
