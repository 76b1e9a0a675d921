// `kiln analyze IMAGE`: what each layer adds, changes and removes, and how many shipped bytes the final
// filesystem never shows ("wasted"): a file written in one layer and deleted or overwritten in a later one
// still travels in the earlier layer. Every layer is streamed once.
//
// Definitions (bytes are Docker's measure: regular-file content; directories, links and devices count 0):
//   added    a non-directory entry at a path absent from the layers below
//   changed  a non-directory entry at a path a lower layer had (its new content counts)
//   removed  files of lower layers hidden by a whiteout, an opaque directory, or a type change
//   total    sum of all layers' bytes (= the `docker history` sizes added up = inspect Size)
//   final    bytes of the files visible in the merged filesystem
//   wasted   total - final: bytes of file versions a later layer removed or overwrote
//   efficiency  1 - wasted / total (1 for an image without file bytes). dive reports a similar score.
import { parseWhiteout, type LayerEntry } from "@kiln/snapshot";
import { openStore, type KilnStore } from "../engine/store.js";
import type { Digest } from "../image/oci.js";
import { MergedTree, type FileVersion } from "./fs-tree.js";
import type { OpenedImage } from "./image-source.js";
import { entryDiskSize, scanLayer } from "./layer-scan.js";
import { cacheLayerFigures } from "./layer-sizes.js";
import { historyRows } from "./history.js";
import { openImage, type OpenImageOptions } from "./open-image.js";
import { formatTable } from "./table.js";
import { ellipsis, humanSize } from "./units.js";

export interface ChangeCount {
  count: number;
  bytes: number;
}

export interface LayerAnalysis {
  index: number;
  digest: Digest;
  diffID: Digest;
  createdBy: string;
  /** Bytes of the layer's files (added + changed), as `docker history` shows it. */
  size: number;
  /** Compressed blob size and uncompressed tar length. */
  blobSize: number;
  tarSize: number;
  added: ChangeCount;
  changed: ChangeCount;
  removed: ChangeCount;
  /** Bytes this layer ships that later layers remove or overwrite. */
  wasted: number;
}

export interface FileFigure {
  path: string;
  size: number;
  layer: number;
}

export interface WastedPath {
  path: string;
  /** Hidden versions of this path and their bytes. */
  versions: number;
  bytes: number;
}

export interface AnalyzeReport {
  spec: string;
  id: Digest;
  manifestDigest?: Digest;
  repoTags: string[];
  layers: LayerAnalysis[];
  totalBytes: number;
  finalBytes: number;
  wastedBytes: number;
  efficiency: number;
  largestFiles: FileFigure[];
  wastedFiles: WastedPath[];
}

export interface AnalyzeOptions extends OpenImageOptions {
  /** How many entries the largest-file and wasted-file lists keep (default 10). */
  top?: number;
}

const zero = (): ChangeCount => ({ count: 0, bytes: 0 });

/** Applies one layer's entries to the merged tree, recording its figures. */
class LayerApplier {
  readonly added = zero();
  readonly changed = zero();
  readonly removed = zero();
  /** Path → bucket of this layer's entries, for archives that repeat a path. */
  readonly #bucket = new Map<string, ChangeCount>();

  constructor(
    private readonly tree: MergedTree,
    private readonly layer: number,
    private readonly onHidden: (v: FileVersion) => void,
  ) {}

  #hide(versions: FileVersion[]): void {
    for (const v of versions) {
      this.removed.count++;
      this.removed.bytes += v.size;
      this.onHidden(v);
    }
  }

  apply(entry: LayerEntry): void {
    const wh = parseWhiteout(entry.path);
    if (wh?.kind === "whiteout") return this.#hide(this.tree.remove(wh.target));
    if (wh?.kind === "opaque") return this.#hide(this.tree.clearBelow(wh.dir, this.layer));
    if (wh?.kind === "meta") return;
    if (entry.type === "dir") return this.#hide(this.tree.putDir(entry.path, this.layer));
    const version: FileVersion = { path: entry.path, size: entryDiskSize(entry), layer: this.layer };
    const { previous, hidden } = this.tree.putFile(entry.path, version);
    this.#hide(hidden);
    if (previous && previous.layer === this.layer) {
      // The same path twice in one archive: both ship, the last one is seen.
      const bucket = this.#bucket.get(entry.path) ?? this.added;
      bucket.bytes += version.size;
      this.onHidden(previous);
      return;
    }
    const bucket = previous ? this.changed : this.added;
    bucket.count++;
    bucket.bytes += version.size;
    this.#bucket.set(entry.path, bucket);
    if (previous) this.onHidden(previous);
  }
}

export async function analyzeOpenedImage(image: OpenedImage, options: { store?: KilnStore; signal?: AbortSignal; top?: number } = {}): Promise<AnalyzeReport> {
  const top = options.top ?? 10;
  const tree = new MergedTree();
  const wastedByLayer = image.layers.map(() => 0);
  const wastedByPath = new Map<string, WastedPath>();
  const onHidden = (v: FileVersion): void => {
    wastedByLayer[v.layer]! += v.size;
    const w = wastedByPath.get(v.path) ?? { path: v.path, versions: 0, bytes: 0 };
    w.versions++;
    w.bytes += v.size;
    wastedByPath.set(v.path, w);
  };
  const createdBy = new Map<number, string>();
  for (const row of historyRows(image, [])) if (row.layer !== undefined) createdBy.set(row.layer, row.createdBy);

  const partial: Omit<LayerAnalysis, "wasted">[] = [];
  for (const [i, layer] of image.layers.entries()) {
    const applier = new LayerApplier(tree, i, onHidden);
    const figures = await scanLayer(await image.openLayer(i, options.signal), {
      expectedDiffID: layer.diffID,
      onEntry: (e) => applier.apply(e),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (options.store) await cacheLayerFigures(options.store, figures);
    partial.push({
      index: i,
      digest: layer.digest,
      diffID: layer.diffID,
      createdBy: createdBy.get(i) ?? "",
      size: applier.added.bytes + applier.changed.bytes,
      blobSize: layer.size,
      tarSize: figures.tarSize,
      added: applier.added,
      changed: applier.changed,
      removed: applier.removed,
    });
  }
  const layers = partial.map((l) => ({ ...l, wasted: wastedByLayer[l.index]! }));
  const files: FileFigure[] = [];
  let finalBytes = 0;
  for (const { path, version } of tree.files()) {
    finalBytes += version.size;
    files.push({ path, size: version.size, layer: version.layer });
  }
  const bySizeThenPath = (a: { size?: number; bytes?: number; path: string }, b: { size?: number; bytes?: number; path: string }): number =>
    (b.size ?? b.bytes ?? 0) - (a.size ?? a.bytes ?? 0) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  const totalBytes = layers.reduce((s, l) => s + l.size, 0);
  const wastedBytes = totalBytes - finalBytes;
  const report: AnalyzeReport = {
    spec: image.spec,
    id: image.id,
    repoTags: image.repoTags,
    layers,
    totalBytes,
    finalBytes,
    wastedBytes,
    efficiency: totalBytes === 0 ? 1 : 1 - wastedBytes / totalBytes,
    largestFiles: files.sort(bySizeThenPath).slice(0, top),
    wastedFiles: [...wastedByPath.values()].filter((w) => w.bytes > 0).sort(bySizeThenPath).slice(0, top),
  };
  if (image.manifestDigest) report.manifestDigest = image.manifestDigest;
  return report;
}

export async function analyzeImage(spec: string, options: AnalyzeOptions = {}): Promise<AnalyzeReport> {
  const store = options.store ?? (await openStore());
  const image = await openImage(spec, { ...options, store });
  return analyzeOpenedImage(image, {
    store,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.top !== undefined ? { top: options.top } : {}),
  });
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

function counted(c: ChangeCount): string {
  return `${c.count} (${humanSize(c.bytes)})`;
}

export function renderAnalysis(report: AnalyzeReport, options: { format?: "table" | "json"; noTrunc?: boolean } = {}): string {
  if (options.format === "json") return `${JSON.stringify(report, null, 2)}\n`;
  const trunc = options.noTrunc !== true;
  const cut = (s: string): string => (trunc ? ellipsis(s.replaceAll("\t", " "), 45) : s);
  const lines: string[] = [];
  lines.push(
    formatTable([
      ["Image:", report.repoTags[0] ? `${report.repoTags[0]} (${report.spec})` : report.spec],
      ["ID:", report.id],
      ["Layers:", String(report.layers.length)],
      ["Total layer bytes:", humanSize(report.totalBytes)],
      ["Final filesystem:", humanSize(report.finalBytes)],
      ["Wasted:", `${humanSize(report.wastedBytes)} (${percent(report.totalBytes === 0 ? 0 : report.wastedBytes / report.totalBytes)})`],
      ["Efficiency:", percent(report.efficiency)],
    ], { minWidth: 0, padding: 1 }),
  );
  lines.push(
    formatTable([
      ["LAYER", "SIZE", "ADDED", "CHANGED", "REMOVED", "WASTED", "CREATED BY"],
      ...report.layers.map((l) => [String(l.index), humanSize(l.size), counted(l.added), counted(l.changed), counted(l.removed), humanSize(l.wasted), cut(l.createdBy)]),
    ]),
  );
  lines.push(`Largest files in the final filesystem:\n${formatTable([["SIZE", "LAYER", "PATH"], ...report.largestFiles.map((f) => [humanSize(f.size), String(f.layer), `/${f.path}`])])}`);
  if (report.wastedFiles.length > 0) {
    lines.push(`Files shipped but hidden by later layers:\n${formatTable([["WASTED", "VERSIONS", "PATH"], ...report.wastedFiles.map((w) => [humanSize(w.bytes), String(w.versions), `/${w.path}`])])}`);
  }
  return lines.join("\n");
}

/** `kiln analyze`: the text to print. */
export async function analyzeCommand(spec: string, options: AnalyzeOptions & { format?: "table" | "json"; noTrunc?: boolean } = {}): Promise<string> {
  return renderAnalysis(await analyzeImage(spec, options), options);
}
