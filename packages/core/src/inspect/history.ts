// `kiln history IMAGE`: the image's build steps newest first, as `docker history` shows them.
import type { HistoryEntry } from "../image/oci.js";
import type { KilnStore } from "../engine/store.js";
import { openStore } from "../engine/store.js";
import { goJson } from "./go-json.js";
import type { OpenedImage } from "./image-source.js";
import { imageLayerFigures } from "./layer-sizes.js";
import { openImage, type OpenImageOptions } from "./open-image.js";
import { formatTable } from "./table.js";
import { ellipsis, formatRfc3339, humanDuration, humanSize, unixSeconds } from "./units.js";

export interface HistoryRow {
  /** The image ID on the newest row, "<missing>" elsewhere (no per-step images exist for pulled or BuildKit images). */
  id: string;
  /** Seconds since the epoch; 0 when the entry has no timestamp. */
  created: number;
  createdBy: string;
  /** Docker's layer size for layer steps (see LayerFigures.size), 0 for metadata-only steps. */
  size: number;
  comment: string;
  /** Index into the image's layers, for steps that made one. */
  layer?: number;
}

/** Rows oldest first, pairing non-empty history entries with layers in order. */
export function historyRows(image: OpenedImage, layerSizes: readonly number[]): HistoryRow[] {
  const entries: HistoryEntry[] = image.config.history ?? [];
  const rows: HistoryRow[] = [];
  let layer = 0;
  const push = (h: HistoryEntry, layerIndex: number | undefined): void => {
    const row: HistoryRow = {
      id: "<missing>",
      created: unixSeconds(h.created) ?? 0,
      createdBy: h.created_by ?? "",
      size: layerIndex !== undefined ? (layerSizes[layerIndex] ?? 0) : 0,
      comment: h.comment ?? "",
    };
    if (layerIndex !== undefined) row.layer = layerIndex;
    rows.push(row);
  };
  for (const h of entries) {
    if (h.empty_layer === true || layer >= image.layers.length) push(h, undefined);
    else push(h, layer++);
  }
  // Layers the history does not describe (some tools write none) still get a row each.
  for (; layer < image.layers.length; layer++) push({}, layer);
  const top = rows.at(-1);
  if (top) top.id = image.id;
  return rows;
}

export interface HistoryCommandOptions extends OpenImageOptions {
  noTrunc?: boolean;
  /** "table" (default) or "json": one JSON object per line, like `--format '{{json .}}'`. */
  format?: "table" | "json";
  /** Human-readable sizes and ages (default true), as `docker history --human`. */
  human?: boolean;
  /** Print image IDs only. */
  quiet?: boolean;
  /** The clock for "… ago" (default: now). */
  now?: Date;
}

/** Seconds before this are shown without an age (docker/cli's epoch check: reproducible builds use 0). */
const AGE_EPOCH = Date.UTC(2000, 0, 1) / 1000;

function shortId(id: string): string {
  return id.startsWith("sha256:") ? id.slice(7, 19) : id;
}

export interface FormattedHistoryRow {
  ID: string;
  CreatedSince: string;
  CreatedAt: string;
  CreatedBy: string;
  Size: string;
  Comment: string;
}

export function formatHistoryRow(row: HistoryRow, options: { noTrunc?: boolean; human?: boolean; now?: Date } = {}): FormattedHistoryRow {
  const trunc = options.noTrunc !== true;
  const human = options.human !== false;
  const createdAt = formatRfc3339(row.created);
  const nowMs = (options.now ?? new Date()).getTime();
  const createdBy = row.createdBy.replaceAll("\t", " ");
  let since = createdAt;
  if (human) since = row.created <= AGE_EPOCH ? "" : `${humanDuration(nowMs - row.created * 1000)} ago`;
  return {
    ID: trunc ? shortId(row.id) : row.id,
    CreatedSince: since,
    CreatedAt: createdAt,
    CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
    Size: human ? humanSize(row.size) : String(row.size),
    Comment: row.comment,
  };
}

export function renderHistory(rows: readonly HistoryRow[], options: HistoryCommandOptions = {}): string {
  const newestFirst = [...rows].reverse();
  const formatted = newestFirst.map((r) => formatHistoryRow(r, options));
  if (options.quiet) return formatted.map((f) => `${f.ID}\n`).join("");
  if (options.format === "json") {
    // Key order as Go marshals docker's map: alphabetical.
    return formatted
      .map((f) => `${goJson({ Comment: f.Comment, CreatedAt: f.CreatedAt, CreatedBy: f.CreatedBy, CreatedSince: f.CreatedSince, ID: f.ID, Size: f.Size })}\n`)
      .join("");
  }
  const human = options.human !== false;
  const header = ["IMAGE", human ? "CREATED" : "CREATED AT", "CREATED BY", "SIZE", "COMMENT"];
  return formatTable([header, ...formatted.map((f) => [f.ID, human ? f.CreatedSince : f.CreatedAt, f.CreatedBy, f.Size, f.Comment])]);
}

/** Opens the image, sizes its layers (cached in the store) and returns the rows oldest first. */
export async function imageHistory(spec: string, options: OpenImageOptions = {}): Promise<{ image: OpenedImage; rows: HistoryRow[] }> {
  const store: KilnStore = options.store ?? (await openStore());
  const image = await openImage(spec, { ...options, store });
  const figures = await imageLayerFigures(image, { store, ...(options.signal ? { signal: options.signal } : {}) });
  return { image, rows: historyRows(image, figures.map((f) => f.size)) };
}

/** `kiln history`: the text to print. */
export async function historyCommand(spec: string, options: HistoryCommandOptions = {}): Promise<string> {
  const { rows } = await imageHistory(spec, options);
  return renderHistory(rows, options);
}
