// Reading .dockerignore files the way BuildKit's dockerui front end does.
import { readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { BuildContextError } from "./errors.js";
import { goClean, goTrimSpace } from "./go-path.js";

/**
 * Parses .dockerignore text into pattern lines (moby ignorefile.ReadAll): strips a UTF-8
 * BOM, skips lines starting with `#` (before trimming, so "  #x" is a pattern), trims,
 * drops empty lines, cleans each pattern and removes a leading `/`, keeping `!`.
 */
export function parseIgnoreFile(text: string): string[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.startsWith("#")) continue;
    let pattern = goTrimSpace(line);
    if (pattern === "") continue;
    const invert = pattern[0] === "!";
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern[0] === "/") pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

export interface IgnoreFileLocation {
  /** Build context directory. */
  contextDir: string;
  /** The Dockerfile in use; `<Dockerfile>.dockerignore` next to it wins over the context's one. */
  dockerfile?: string;
  /** Explicit ignore file (relative to the context directory); must exist. */
  dockerignoreFile?: string;
}

export interface LoadedIgnoreFile {
  /** Absolute path of the file that was read, undefined when none exists. */
  path: string | undefined;
  patterns: string[];
}

/** Finds and parses the ignore file for a build, following BuildKit's lookup order. */
export async function loadIgnoreFile(loc: IgnoreFileLocation): Promise<LoadedIgnoreFile> {
  const contextDir = resolve(loc.contextDir);
  if (loc.dockerignoreFile !== undefined) {
    const path = isAbsolute(loc.dockerignoreFile) ? loc.dockerignoreFile : join(contextDir, loc.dockerignoreFile);
    const text = await readText(path);
    if (text === undefined) throw new BuildContextError(`ignore file ${path} not found`);
    return { path, patterns: parseIgnoreFile(text) };
  }
  const candidates: string[] = [];
  if (loc.dockerfile !== undefined) candidates.push(`${resolve(contextDir, loc.dockerfile)}.dockerignore`);
  candidates.push(join(contextDir, ".dockerignore"));
  for (const path of candidates) {
    const text = await readText(path);
    if (text !== undefined) return { path, patterns: parseIgnoreFile(text) };
  }
  return { path: undefined, patterns: [] };
}

// Synchronous: one or two tiny (usually absent) files, read on the way to the context walk.
async function readText(path: string): Promise<string | undefined> {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new BuildContextError(`failed to read ignore file ${path}`, { cause: e });
  }
}
