// FROM images that are not in the local store come from their registry; the pulled image is tagged
// locally (as `docker pull` does) so the next build resolves it without a round trip unless --pull.
import { RegistryClient } from "../registry/client.js";
import { pullImage } from "../registry/pull.js";
import type { ProgressCallback } from "../registry/progress.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { ImagePuller } from "./base-image.js";
import type { KilnStore } from "./store.js";

export function registryPuller(store: KilnStore, options: { client?: RegistryClient; onProgress?: (reference: string) => ProgressCallback } = {}): ImagePuller {
  const client = options.client ?? new RegistryClient();
  return {
    async pull(reference, { platform, signal }) {
      const ref = parseReference(reference);
      const image = await pullImage(ref, store.blobs, {
        client,
        platform,
        ...(signal ? { signal } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress(reference) } : {}),
      });
      // A digest reference names content already; only tags are remembered.
      if (ref.digest === undefined) await store.tags.set(formatReference(ref), image.manifestDescriptor);
      return { manifestDigest: image.manifestDescriptor.digest };
    },
  };
}
