import type { SourceRange } from "./ast.js";

/**
 * A rejected Dockerfile. Prints as BuildKit users expect, `Dockerfile:3: message`, and keeps the
 * location for editors and tools.
 */
export class DockerfileError extends Error {
  override readonly name = "DockerfileError";
  constructor(
    readonly file: string,
    readonly range: SourceRange | undefined,
    readonly detail: string,
  ) {
    super(range ? `${file}:${range.startLine}: ${detail}` : `${file}: ${detail}`);
  }
  get line(): number | undefined {
    return this.range?.startLine;
  }
  get column(): number | undefined {
    return this.range?.startColumn;
  }
}
