import { Transform, type TransformCallback } from "node:stream";
import type { Descriptor, Digest } from "../image/oci.js";

/** Transfer events for progress displays, one blob at a time (Docker's per-layer lines). */
export type TransferEvent =
  | { type: "resolved"; reference: string; digest: Digest; mediaType: string }
  /** The blob is already where it needs to be: in the local store (pull) or the registry (push). */
  | { type: "exists"; digest: Digest; size: number }
  | { type: "mounted"; digest: Digest; size: number; from: string }
  | { type: "start"; digest: Digest; size: number }
  | { type: "progress"; digest: Digest; current: number; total: number }
  | { type: "retry"; digest: Digest | undefined; attempt: number; delayMs: number; error: Error }
  | { type: "done"; digest: Digest; size: number };

export type ProgressCallback = (event: TransferEvent) => void;

/** Byte granularity of "progress" events: the first chunk, then one per 256 KiB, then the last. */
const PROGRESS_STEP = 256 * 1024;

/** A pass-through that reports how many bytes of `desc` went by (no buffering). */
export function progressTap(desc: Descriptor, onProgress: ProgressCallback | undefined): Transform {
  let current = 0;
  let last = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      current += chunk.length;
      if (onProgress && (last === 0 || current - last >= PROGRESS_STEP || current === desc.size)) {
        last = current;
        onProgress({ type: "progress", digest: desc.digest, current, total: desc.size });
      }
      cb(null, chunk);
    },
  });
}
