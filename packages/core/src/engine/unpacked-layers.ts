// Layers unpacked once into the store (by diffID), in overlayfs form (whiteouts as 0/0 char devices,
// opaque dirs by xattr), so RUN can stack them as read-only lowerdirs.
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { withFileLock, type BlobStore } from "@kiln/cache";
import { extractLayer } from "@kiln/snapshot";
import type { LayerDescriptor, Digest } from "../image/oci.js";

const COMPLETE_MARKER = ".kiln-complete";

export class UnpackedLayers {
  /** Layers seen complete by this process: an unpacked layer is never changed, so no need to look again. */
  readonly #complete = new Set<Digest>();

  constructor(
    private readonly blobs: BlobStore,
    /** `<store>/layers`: one directory per diffID. */
    readonly root: string,
    private readonly ensureBlob: (digest: Digest, signal?: AbortSignal) => Promise<void> = async () => undefined,
  ) {}

  /** Directory holding the layer's tree (the marker file lives beside it, not inside). */
  dirOf(diffID: Digest): string {
    return path.join(this.root, diffID.slice("sha256:".length), "fs");
  }

  private async isComplete(diffID: Digest): Promise<boolean> {
    if (this.#complete.has(diffID)) return true;
    try {
      await stat(path.join(this.root, diffID.slice("sha256:".length), COMPLETE_MARKER));
      this.#complete.add(diffID);
      return true;
    } catch {
      return false;
    }
  }

  /** Unpacks the layer if it is not yet (once across processes), returns its directory. */
  async ensure(layer: LayerDescriptor, signal?: AbortSignal): Promise<string> {
    const dir = this.dirOf(layer.diffID);
    if (await this.isComplete(layer.diffID)) return dir;
    await mkdir(this.root, { recursive: true });
    const hex = layer.diffID.slice("sha256:".length);
    await withFileLock(path.join(this.root, `${hex}.lock`), async () => {
      if (await this.isComplete(layer.diffID)) return;
      const base = path.join(this.root, hex);
      const tmp = `${base}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
      try {
        await this.ensureBlob(layer.digest, signal);
        await extractLayer(this.blobs.createReadStream(layer.digest), path.join(tmp, "fs"), { whiteouts: "overlay", allowDevices: true, ...(signal ? { signal } : {}) });
        await writeFile(path.join(tmp, COMPLETE_MARKER), layer.digest);
        await rm(base, { recursive: true, force: true });
        await rename(tmp, base);
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    }, signal ? { signal } : {});
    return dir;
  }

  /**
   * The overlay lower dirs for a stack of layers, top-most first. A layer that appears more than once
   * (two identical steps, e.g. two empty RUN layers) is kept only at its top-most place: overlayfs
   * refuses duplicate lowers, and the lower copy can change nothing the upper copy does not redo.
   */
  async lowerDirs(layers: LayerDescriptor[], signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set<string>();
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i]!;
      if (seen.has(layer.diffID)) continue;
      seen.add(layer.diffID);
      out.push(await this.ensure(layer, signal));
    }
    return out;
  }
}
