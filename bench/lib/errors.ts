/** A benchmark step failed: a tool exited non-zero, or a fixture or service could not be prepared. */
export class BenchError extends Error {
  override readonly name = "BenchError";
}
