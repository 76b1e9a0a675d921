// lstat for the context walk, one call per path, made as cheap as Node allows.
//
// fs.lstatSync wraps each result in a Stats object with four Date objects: for a 20k-file
// context that is ~1.5 µs and ~300 bytes of garbage per path on top of the syscall, about a
// third of a warm rebuild's walk. Node's own fs binding returns the raw numbers in a shared
// Float64Array instead; it is used when present and verified against lstatSync (same fields,
// same float arithmetic for the *Ms times), and lstatSync is used otherwise, so a Node whose
// binding differs only gets slower, never wrong.
import { lstatSync, type Stats } from "node:fs";
import { type ContextEntry, entryFromStats, entryTypeOf } from "./entry.js";

/** Node's internal fs binding, as far as it is used here. */
interface FsBinding {
  lstat(path: string, bigint: boolean, req: undefined, throwIfNoEntry: boolean): Float64Array | undefined;
}

// Offsets in the binding's stat array (node's kFsStatsFieldsNumber layout).
const DEV = 0;
const MODE = 1;
const NLINK = 2;
const UID = 3;
const GID = 4;
const RDEV = 5;
const INO = 7;
const SIZE = 8;
const MTIME_S = 12;
const MTIME_NS = 13;
const CTIME_S = 14;
const CTIME_NS = 15;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

const NO_THROW = { throwIfNoEntry: false } as const;

let binding: FsBinding | null | undefined;

/** The binding if it is there and agrees with lstatSync on `probe` (checked once per process). */
function verifiedBinding(probe: string): FsBinding | undefined {
  if (binding !== undefined) return binding ?? undefined;
  binding = null;
  try {
    const getBinding = (process as unknown as { binding?: (name: string) => unknown }).binding;
    const b = getBinding?.call(process, "fs") as Partial<FsBinding> | undefined;
    if (typeof b?.lstat !== "function") return undefined;
    const candidate = b as FsBinding;
    const viaBinding = entryFromArray("", candidate.lstat(probe, false, undefined, false));
    const st = lstatSync(probe, NO_THROW);
    if (!viaBinding || !st || !sameEntry(viaBinding, entryFromStats("", st))) return undefined;
    binding = candidate;
    return binding;
  } catch {
    return undefined;
  }
}

function sameEntry(a: ContextEntry, b: ContextEntry): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.rawMode === b.rawMode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.rdev === b.rdev &&
    a.nlink === b.nlink
  );
}

/** Numbers per path in a raw walk's column (see RawWalk in walk.ts). */
export const RAW_FIELDS = 10;
// Column order: rawMode, uid, gid, size, mtimeMs, ctimeMs, ino, dev, rdev, nlink.
const R_MODE = 0;
const R_UID = 1;
const R_GID = 2;
const R_SIZE = 3;
const R_MTIME = 4;
const R_CTIME = 5;
const R_INO = 6;
const R_DEV = 7;
const R_RDEV = 8;
const R_NLINK = 9;

/** Copies a binding stat array into `out` at `o`, in RAW_FIELDS order. */
function putArray(a: Float64Array, out: Float64Array, o: number): void {
  out[o + R_MODE] = a[MODE] as number;
  out[o + R_UID] = a[UID] as number;
  out[o + R_GID] = a[GID] as number;
  out[o + R_SIZE] = a[SIZE] as number;
  // The same expression as Node's Stats, so the values are bit-identical (stat cache keys).
  out[o + R_MTIME] = (a[MTIME_S] as number) * 1e3 + (a[MTIME_NS] as number) / 1e6;
  out[o + R_CTIME] = (a[CTIME_S] as number) * 1e3 + (a[CTIME_NS] as number) / 1e6;
  out[o + R_INO] = a[INO] as number;
  out[o + R_DEV] = a[DEV] as number;
  out[o + R_RDEV] = a[RDEV] as number;
  out[o + R_NLINK] = a[NLINK] as number;
}

function putStats(st: Stats, out: Float64Array, o: number): void {
  out[o + R_MODE] = st.mode;
  out[o + R_UID] = st.uid;
  out[o + R_GID] = st.gid;
  out[o + R_SIZE] = st.size;
  out[o + R_MTIME] = st.mtimeMs;
  out[o + R_CTIME] = st.ctimeMs;
  out[o + R_INO] = st.ino;
  out[o + R_DEV] = st.dev;
  out[o + R_RDEV] = st.rdev;
  out[o + R_NLINK] = st.nlink;
}

/** The entry for the numbers at `o` (RAW_FIELDS order). */
export function entryFromRaw(path: string, nums: Float64Array, o: number, linkname: string | undefined): ContextEntry {
  const rawMode = nums[o + R_MODE] as number;
  const entry: ContextEntry = {
    path,
    type: entryTypeOf({ mode: rawMode }),
    mode: rawMode & 0o7777,
    rawMode,
    uid: nums[o + R_UID] as number,
    gid: nums[o + R_GID] as number,
    size: nums[o + R_SIZE] as number,
    mtimeMs: nums[o + R_MTIME] as number,
    ctimeMs: nums[o + R_CTIME] as number,
    ino: nums[o + R_INO] as number,
    dev: nums[o + R_DEV] as number,
    rdev: nums[o + R_RDEV] as number,
    nlink: nums[o + R_NLINK] as number,
  };
  return linkname === undefined ? entry : { ...entry, linkname };
}

function entryFromArray(path: string, a: Float64Array | undefined): ContextEntry | undefined {
  if (!a || a.length < CTIME_NS + 1) return undefined;
  const tmp = new Float64Array(RAW_FIELDS);
  putArray(a, tmp, 0);
  return entryFromRaw(path, tmp, 0, undefined);
}

/** Whether the numbers at `o` are a directory's / a symlink's. */
export function rawIsDir(nums: Float64Array, o: number): boolean {
  return ((nums[o + R_MODE] as number) & S_IFMT) === S_IFDIR;
}
export function rawIsSymlink(nums: Float64Array, o: number): boolean {
  return ((nums[o + R_MODE] as number) & S_IFMT) === S_IFLNK;
}

/**
 * A walker's lstat: writes the numbers of `abs` into `out` at `o` (RAW_FIELDS order) and returns
 * true, or false if it vanished (ENOENT). Other errors throw as from lstatSync. `probe` is any
 * existing path, used once to verify the fast path.
 */
export function lstatInto(abs: string, probe: string, out: Float64Array, o: number): boolean {
  const b = verifiedBinding(probe);
  if (b) {
    const a = b.lstat(abs, false, undefined, false);
    if (!a) return false;
    putArray(a, out, o);
    return true;
  }
  const st = lstatSync(abs, NO_THROW);
  if (!st) return false;
  putStats(st, out, o);
  return true;
}

/** Whether walks use the raw binding (verified against lstatSync on `probe`). */
export function usesRawLstat(probe: string): boolean {
  return verifiedBinding(probe) !== undefined;
}

/** Test hook: forget the verification so the next call checks the binding again. */
export function resetFastLstatForTests(useBinding = true): void {
  binding = useBinding ? undefined : null;
}
