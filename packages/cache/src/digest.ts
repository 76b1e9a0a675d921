import { createHash, type Hash } from "node:crypto";
import { InvalidDigestError } from "./errors.js";

/** An OCI content digest; kiln only produces and stores sha256. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === "string" && DIGEST_RE.test(value);
}

/** Validates `value` and returns it typed as a Digest; throws InvalidDigestError otherwise. */
export function parseDigest(value: unknown): Digest {
  if (!isDigest(value)) throw new InvalidDigestError(value);
  return value;
}

/** The 64-character hex part of a digest (validated). */
export function digestHex(digest: Digest): string {
  return parseDigest(digest).slice("sha256:".length);
}

export function digestFromHash(hash: Hash): Digest {
  return `sha256:${hash.digest("hex")}`;
}

/** sha256 digest of in-memory data (strings are hashed as UTF-8). */
export function computeDigest(data: Uint8Array | string): Digest {
  return digestFromHash(createHash("sha256").update(data));
}
