import { randomBytes } from "node:crypto";
import { closeSync, futimesSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { basename, join } from "node:path";

export function isErrno(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === "string" &&
    codes.includes((err as NodeJS.ErrnoException).code as string);
}

/**
 * Temp file name carrying the writer's pid (so stale files of dead writers can be recognised) and a random
 * suffix (so concurrent writers, even in one process, never collide).
 */
export function tempName(hint = "tmp"): string {
  return `${process.pid}.${randomBytes(8).toString("hex")}.${hint}`;
}

/** Parses the pid out of a name made by tempName(); undefined for foreign names. */
export function tempNamePid(name: string): number | undefined {
  const m = /^(\d+)\.[0-9a-f]{16}\./.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** fsync a directory so a rename into it survives a crash; some filesystems refuse, which is harmless. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch (err) {
    if (!isErrno(err, "EINVAL", "EISDIR", "EPERM", "EACCES", "ENOTSUP", "EBADF")) throw err;
  } finally {
    await fh?.close();
  }
}

export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (isErrno(err, "ENOENT")) return false;
    throw err;
  }
}

export function unlinkIfExistsSync(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if (isErrno(err, "ENOENT")) return false;
    throw err;
  }
}

export async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
}

export interface AtomicWriteOptions {
  /** Directory for the temp file; must be on the same filesystem as `target`. */
  tmpDir: string;
  mode?: number;
  /** Also fsync the target's directory after the rename (durable even across power loss). */
  syncDir?: boolean;
  /** Set the file's mtime (and atime) before it becomes visible. */
  mtime?: Date;
  /**
   * fsync the data before the rename (default true). Files that only matter while their writer lives
   * (leases) skip it: a crash that could lose the data ends the writer too.
   */
  durable?: boolean;
}

/**
 * Replaces `target` with `data` so readers see either the old or the new content, never a partial file:
 * write a temp file, fsync it, rename it over the target.
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string, options: AtomicWriteOptions): Promise<void> {
  if (options.durable === false && !options.syncDir) {
    writeFileAtomicSync(target, data, options);
    return;
  }
  const tmp = join(options.tmpDir, tempName(basename(target)));
  const fh = await open(tmp, "wx", options.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    if (options.mtime) await fh.utimes(options.mtime, options.mtime);
    if (options.durable !== false) await fh.sync();
  } catch (err) {
    await fh.close();
    await unlinkIfExists(tmp);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, target);
  } catch (err) {
    await unlinkIfExists(tmp);
    throw err;
  }
  if (options.syncDir) await fsyncDir(join(target, ".."));
}

/**
 * writeFileAtomic without fsync, synchronously: for small files that are rewritten often (leases), where a
 * few local syscalls cost less than the thread-pool round trips of the promise API.
 */
function writeFileAtomicSync(target: string, data: Uint8Array | string, options: AtomicWriteOptions): void {
  const tmp = join(options.tmpDir, tempName(basename(target)));
  const fd = openSync(tmp, "wx", options.mode ?? 0o644);
  try {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    if (options.mtime) futimesSync(fd, options.mtime, options.mtime);
  } catch (err) {
    closeSync(fd);
    unlinkIfExistsSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, target);
  } catch (err) {
    unlinkIfExistsSync(tmp);
    throw err;
  }
}

/** readdir that treats a missing directory as empty. */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, "ENOENT", "ENOTDIR")) return [];
    throw err;
  }
}
