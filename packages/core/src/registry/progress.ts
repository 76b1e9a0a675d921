import type { Digest } from "../image/oci.js";

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
