// Errors of the image inspection commands (history, inspect, analyze) and of the image sources.

export class InspectError extends Error {
  override readonly name: string = "InspectError";
}

/** The image spec names something that cannot be read: a missing tag, file, or manifest entry. */
export class ImageNotFoundError extends InspectError {
  override readonly name = "ImageNotFoundError";
}

/** The source exists but is not a well-formed image (bad JSON, missing blobs, mismatched layer counts). */
export class InvalidImageError extends InspectError {
  override readonly name = "InvalidImageError";
}

/** A spec prefix or archive form kiln does not read (e.g. a compressed outer archive). */
export class UnsupportedSourceError extends InspectError {
  override readonly name = "UnsupportedSourceError";
}

/** A layer's uncompressed content does not hash to the diffID the config promises. */
export class LayerDiffIdMismatchError extends InspectError {
  override readonly name = "LayerDiffIdMismatchError";
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`layer content hashes to ${actual}, but the image config lists diffID ${expected}`);
  }
}
