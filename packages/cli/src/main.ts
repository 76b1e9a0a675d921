#!/usr/bin/env node
// The kiln command's entry: runs the one-file bundle (faster to load) when none of its inputs changed
// since it was made by `pnpm build`, and the compiled modules otherwise, so a stale bundle never runs.
import { readFileSync, statSync } from "node:fs";

function freshBundle(): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(new URL("./kiln.bundle.json", import.meta.url), "utf8")) as { version?: number; inputs?: Record<string, number> };
    if (manifest.version !== 1 || !manifest.inputs) return undefined;
    for (const [file, mtimeMs] of Object.entries(manifest.inputs)) if (statSync(file).mtimeMs !== mtimeMs) return undefined;
    return new URL("./kiln.bundle.mjs", import.meta.url).href;
  } catch {
    return undefined;
  }
}

await import(freshBundle() ?? "./cli.js");
