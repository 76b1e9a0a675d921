// Per-layer figures for an image, cached in the store by diffID (they depend on the layer content only),
// so `history` and `inspect` read each layer once per machine.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { digestHex, writeFileAtomic } from "@kiln/cache";
import type { KilnStore } from "../engine/store.js";
import type { Digest } from "../image/oci.js";
import type { OpenedImage } from "./image-source.js";
import { scanLayer, type LayerFigures } from "./layer-scan.js";

const CACHE_DIR = "layer-sizes";
const CACHE_VERSION = 1;

interface CacheRecord extends LayerFigures {
  version: number;
}

async function readCached(store: KilnStore, diffID: Digest): Promise<LayerFigures | undefined> {
  try {
    const rec = JSON.parse(await readFile(path.join(store.blobs.dir(CACHE_DIR), `${digestHex(diffID)}.json`), "utf8")) as CacheRecord;
    if (rec.version !== CACHE_VERSION || rec.diffID !== diffID || !Number.isSafeInteger(rec.size) || !Number.isSafeInteger(rec.tarSize)) return undefined;
    return { size: rec.size, tarSize: rec.tarSize, diffID: rec.diffID };
  } catch {
    return undefined;
  }
}

export async function cacheLayerFigures(store: KilnStore, figures: LayerFigures): Promise<void> {
  const dir = await store.blobs.ensureDir(CACHE_DIR);
  const record: CacheRecord = { version: CACHE_VERSION, ...figures };
  await writeFileAtomic(path.join(dir, `${digestHex(figures.diffID)}.json`), JSON.stringify(record), { tmpDir: store.blobs.dir("tmp") });
}

export interface LayerFiguresOptions {
  /** Where figures are cached; without one every layer is streamed. */
  store?: KilnStore;
  signal?: AbortSignal;
}

/** Figures of layer `index`: from the cache, else by streaming the layer once (and caching the result). */
export async function layerFigures(image: OpenedImage, index: number, options: LayerFiguresOptions = {}): Promise<LayerFigures> {
  const layer = image.layers[index]!;
  if (options.store) {
    const cached = await readCached(options.store, layer.diffID);
    if (cached) return cached;
  }
  const figures = await scanLayer(await image.openLayer(index, options.signal), {
    expectedDiffID: layer.diffID,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (options.store) await cacheLayerFigures(options.store, figures);
  return figures;
}

/** Figures of every layer, base first (layers are read one at a time: they may be large). */
export async function imageLayerFigures(image: OpenedImage, options: LayerFiguresOptions = {}): Promise<LayerFigures[]> {
  const out: LayerFigures[] = [];
  for (let i = 0; i < image.layers.length; i++) out.push(await layerFigures(image, i, options));
  return out;
}
