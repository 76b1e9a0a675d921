// Read-only inputs of a sandbox run that depend only on their content (the /etc files it bind-mounts, the
// placeholder lower for mount points), kept once per distinct content instead of being written per run.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { SandboxSetupError } from "./errors.js";

let baseDir: string | undefined;

/**
 * `<tmp>/kiln-sandbox-<uid>`: private to the user (0700, owned by us, not a symlink), so no other user can
 * plant or change what a sandbox bind-mounts from it. Entries are content-addressed and never modified.
 */
export function sharedSandboxDir(): string {
  if (baseDir !== undefined && existsSync(baseDir)) return baseDir;
  const uid = process.getuid?.() ?? 0;
  const dir = path.join(os.tmpdir(), `kiln-sandbox-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new SandboxSetupError(`${dir} must be a directory owned by uid ${uid} with mode 0700`);
  }
  baseDir = dir;
  return dir;
}

const made = new Map<string, Promise<string>>();
const LAYOUT_VERSION = 1;

/**
 * The directory `<base>/<kind>-<hash of key>`, filled once by `fill` (into a temp dir, then renamed into
 * place, so a concurrent process never sees a half-written one). Re-created if something removed it.
 */
export async function contentDir(kind: string, key: string, fill: (dir: string) => Promise<void>): Promise<string> {
  // The layout version is part of the name: a kiln that fills a kind differently never reuses an old entry.
  const hash = createHash("sha256").update(`${LAYOUT_VERSION}\0${key}`).digest("hex").slice(0, 32);
  const dir = path.join(sharedSandboxDir(), `${kind}-${hash}`);
  const pending = made.get(dir);
  if (pending !== undefined) {
    const ready = await pending.catch(() => undefined);
    if (ready !== undefined && existsSync(ready)) return ready;
  }
  const p = (async () => {
    if (existsSync(dir)) return dir;
    const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
    try {
      await mkdir(tmp, { mode: 0o755 });
      await fill(tmp);
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      // Another process made the same directory first: same content, use theirs.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "EEXIST" && code !== "ENOTEMPTY") || !existsSync(dir)) throw err;
    }
    return dir;
  })();
  made.set(dir, p);
  return p;
}

/** Writes a file readable by everyone (the sandbox user may be anyone), not writable through a bind. */
export function writeShared(file: string, data: string): Promise<void> {
  return writeFile(file, data, { mode: 0o644 });
}
