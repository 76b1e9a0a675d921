/** Compare two images (config fields and flattened filesystems) as readable difference lines. */
import type { HistoryEntry, ImageConfig } from "./image-archive.js";
import type { FsEntry, FsView } from "./image-fs.js";


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
