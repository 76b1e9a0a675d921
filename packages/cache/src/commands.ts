// Text for the `kiln cache du|prune|check` commands; the CLI parses flags and prints what these return.
import type { BlobStore } from "./blob-store.js";
import { checkStore, type CheckIssue, type CheckOptions } from "./check.js";
import { collectGarbage, pruneCache, type GcResult, type PruneOptions } from "./gc.js";
import { InvalidUnitError, formatSize, parseDuration, parseSize } from "./units.js";
import { cacheUsage } from "./usage.js";

export interface CacheDuOptions {
  /** Print every record (default: the 50 most recently used). */
  verbose?: boolean;
  signal?: AbortSignal;
}

export async function cacheDuCommand(store: BlobStore, options: CacheDuOptions = {}): Promise<string> {
  const usage = await cacheUsage(store, options.signal ? { signal: options.signal } : {});
  const shown = options.verbose ? usage.records : usage.records.slice(0, 50);
  const rows = shown.map((r) => [
    r.key.slice(7, 19),
    `${formatSize(r.size)}${r.lazySize > 0 ? ` (+${formatSize(r.lazySize)} lazy)` : ""}${r.shared ? " *" : ""}`,
    r.lastUsedAt.replace(/\.\d+Z$/, "Z"),
    truncate(r.instruction.replace(/\s+/g, " "), 60),
  ]);
  const lines = table(["KEY", "SIZE", "LAST USED", "INSTRUCTION"], rows);
  if (shown.length < usage.records.length) lines.push(`... ${usage.records.length - shown.length} more (--verbose lists all)`);
  lines.push(
    `Records: ${usage.records.length}`,
    `Total (cache records, shared blobs once): ${formatSize(usage.totalSize)}${usage.lazySize > 0 ? ` (+${formatSize(usage.lazySize)} not downloaded)` : ""}`,
    `Store blobs: ${usage.storeBlobs}, ${formatSize(usage.storeSize)}${usage.storeComposites > 0 ? ` (+${usage.storeComposites} composite, stored as their parts)` : ""}`,
  );
  if (usage.records.some((r) => r.shared)) lines.push("* shares blobs with other records");
  return `${lines.join("\n")}\n`;
}

export interface CachePruneFlags {
  all?: boolean;
  /** `--keep-storage 10GB`. */
  keepStorage?: string;
  /** `--filter until=24h` (repeatable). */
  filters?: string[];
  signal?: AbortSignal;
}

/** Turns CLI flags into PruneOptions; throws InvalidUnitError on a bad size, duration or filter. */
export function pruneOptionsFromFlags(flags: CachePruneFlags): PruneOptions {
  const opts: PruneOptions = {};
  if (flags.all) opts.all = true;
  if (flags.keepStorage !== undefined) opts.keepStorage = parseSize(flags.keepStorage);
  for (const f of flags.filters ?? []) {
    const m = /^until=(.+)$/.exec(f.trim());
    if (!m) throw new InvalidUnitError(`unsupported filter ${JSON.stringify(f)}: only until=DURATION is supported`);
    opts.until = parseDuration(m[1]!);
  }
  if (flags.signal) opts.signal = flags.signal;
  return opts;
}

export async function cachePruneCommand(store: BlobStore, flags: CachePruneFlags = {}): Promise<string> {
  const result = await pruneCache(store, pruneOptionsFromFlags(flags));
  const lines = [`Deleted records: ${result.removedRecords.length}`, ...gcLines(result.gc), `Cache now needs: ${formatSize(result.keptBytes)}`];
  return `${lines.join("\n")}\n`;
}

/** `kiln cache gc`: collect only, no record is removed. */
export async function cacheGcCommand(store: BlobStore, options: { signal?: AbortSignal } = {}): Promise<string> {
  return `${gcLines(await collectGarbage(store, options)).join("\n")}\n`;
}

function gcLines(gc: GcResult): string[] {
  return [
    `Deleted blobs: ${gc.removedBlobs.length} (${formatSize(gc.freedBytes)} reclaimed), kept ${gc.keptBlobs}`,
    `Deleted unpacked layers: ${gc.removedLayerDirs}, layer caches: ${gc.removedLayerCaches}, lazy sources: ${gc.removedRemoteSources}`,
    `Cleaned leftovers: ${gc.removedIngest} ingest, ${gc.removedTemp} temp, ${gc.removedLeases} dead leases`,
  ];
}

/** `kiln cache check [--repair]`: exit code 1 when anything was wrong (even if repaired). */
export async function cacheCheckCommand(store: BlobStore, options: CheckOptions = {}): Promise<{ output: string; exitCode: number }> {
  const result = await checkStore(store, options);
  const lines = result.issues.map(describeIssue);
  if (options.repair && !result.ok) lines.push("Repaired: corrupt blobs, unreadable records and records with missing blobs were deleted");
  lines.push(`Checked ${result.blobs} blobs, ${result.records} records (${result.lazyBlobs} blobs not downloaded yet): ${result.ok ? "OK" : `${result.issues.length} problem(s)`}`);
  return { output: `${lines.join("\n")}\n`, exitCode: result.ok ? 0 : 1 };
}

function describeIssue(issue: CheckIssue): string {
  switch (issue.kind) {
    case "corrupt-blob":
      return `corrupt blob ${issue.digest}: ${issue.detail}`;
    case "stray-file":
      return `stray file in blobs/: ${issue.path}`;
    case "corrupt-record":
      return `unreadable cache record ${issue.path}`;
    case "missing-blob":
      return `missing blob ${issue.digest}${issue.record ? ` (cache record ${issue.record})` : ""}${issue.tag ? ` (tag ${issue.tag})` : ""}`;
  }
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [fmt(header), ...rows.map(fmt)];
}
