import type { Digest } from "./digest.js";

/** Base class so callers can catch every cache-package failure at once. */
export class CacheError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidDigestError extends CacheError {
  constructor(readonly value: unknown) {
    super(`invalid digest ${JSON.stringify(value)}: expected "sha256:" followed by 64 lowercase hex characters`);
  }
}

export class BlobNotFoundError extends CacheError {
  constructor(readonly digest: Digest, options?: ErrorOptions) {
    super(`blob ${digest} not found in the store`, options);
  }
}

export class DigestMismatchError extends CacheError {
  constructor(readonly expected: Digest, readonly actual: Digest) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
  }
}

export class SizeMismatchError extends CacheError {
  /** `actual` is a lower bound when the write was cut short for exceeding `expected`. */
  constructor(readonly expected: number, readonly actual: number) {
    super(`size mismatch: expected ${expected} bytes, got ${actual}`);
  }
}

/** Thrown when an ingest is used after commit()/abort() or committed twice. */
export class IngestStateError extends CacheError {}

export class InvalidStoreNameError extends CacheError {
  constructor(readonly value: string) {
    super(`invalid store directory name ${JSON.stringify(value)}: must be a single path segment`);
  }
}
