/** A .dockerignore or COPY pattern that Go's path.Match (or Docker's matcher) rejects. */
export class BadPatternError extends Error {
  override readonly name = "BadPatternError";
  constructor(
    readonly pattern: string,
    detail = "syntax error in pattern",
  ) {
    super(`${detail}: ${JSON.stringify(pattern)}`);
  }
}

/** A COPY/ADD source that does not exist in the (filtered) build context. Message mirrors BuildKit. */
export class SourceNotFoundError extends Error {
  override readonly name = "SourceNotFoundError";
  constructor(
    /** Context-absolute path as BuildKit prints it, e.g. "/x". */
    readonly path: string,
    readonly source: string,
  ) {
    super(`failed to compute cache key: ${JSON.stringify(path)}: not found`);
  }
}

/** Symlink resolution inside the context exceeded the link budget (a loop). */
export class SymlinkLoopError extends Error {
  override readonly name = "SymlinkLoopError";
  constructor(readonly path: string) {
    super(`too many links while resolving ${JSON.stringify(path)}`);
  }
}

/** The build context directory or its ignore file could not be read. */
export class BuildContextError extends Error {
  override readonly name = "BuildContextError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
