import type { Digest } from "../image/oci.js";

/** Where output writers read blobs from. The cache package's BlobStore satisfies it. */
export interface BlobSource {
  createReadStream(digest: Digest): NodeJS.ReadableStream;
  stat(digest: Digest): Promise<{ size: number } | undefined>;
}
