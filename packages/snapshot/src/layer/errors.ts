/** Base class so callers can catch every layer-module failure at once. */
export class LayerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A LayerEntry handed to the writer is invalid (bad path, duplicate, missing size, content length mismatch). */
export class LayerEntryError extends LayerError {
  constructor(
    readonly entryPath: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`layer entry ${JSON.stringify(entryPath)}: ${reason}`, options);
  }
}

/** The tar stream being read is malformed or uses an unsupported feature. */
export class BadTarError extends LayerError {
  constructor(
    reason: string,
    readonly entryPath?: string,
    options?: ErrorOptions,
  ) {
    super(entryPath === undefined ? `bad tar: ${reason}` : `bad tar entry ${JSON.stringify(entryPath)}: ${reason}`, options);
  }
}

/** The input is not a (possibly compressed) tar archive; ADD copies such a file as-is. */
export class NotAnArchiveError extends LayerError {
  constructor(reason: string) {
    super(`not an archive: ${reason}`);
  }
}

/** Extracting an entry would touch something outside the destination directory. */
export class UnsafePathError extends LayerError {
  constructor(
    readonly entryPath: string,
    reason: string,
  ) {
    super(`unsafe tar entry ${JSON.stringify(entryPath)}: ${reason}`);
  }
}

/** An entry could not be materialised on disk (e.g. its parent is a regular file). */
export class ExtractError extends LayerError {
  constructor(
    readonly entryPath: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot extract ${JSON.stringify(entryPath)}: ${reason}`, options);
  }
}
