// Offsets of the lstat numbers in a RawWalk's `nums` column (RAW_FIELDS per path, in fast-lstat.ts's
// documented order: rawMode, uid, gid, size, mtimeMs, ctimeMs, ino, dev, rdev, nlink). Digesting reads
// them in place instead of making an entry object per path; a test pins them to entryFromRaw.
export { RAW_FIELDS } from "./fast-lstat.js";

export const R_MODE = 0;
export const R_UID = 1;
export const R_GID = 2;
export const R_SIZE = 3;
export const R_MTIME = 4;
export const R_CTIME = 5;
export const R_INO = 6;
export const R_DEV = 7;
export const R_RDEV = 8;

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

/** The file type bits of the path at offset `o`. */
export function rawFormat(nums: Float64Array, o: number): number {
  return (nums[o + R_MODE] as number) & S_IFMT;
}
