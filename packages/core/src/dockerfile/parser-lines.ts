// Physical-line reading as BuildKit's parser does it: lines keep their line endings, and, like
// Go's bufio.Scanner with its default 64 KiB token limit, a longer line stops the scan with an
// error that the parser reports once it has finished with what it read.

/** bufio.MaxScanTokenSize: the scanner's buffer never grows beyond this. */
const MAX_TOKEN_BYTES = 64 * 1024;

export const LINE_TOO_LONG = `dockerfile line greater than max allowed size of ${MAX_TOKEN_BYTES - 1}`;

export class LineScanner {
  private pos = 0;
  /** Set when a line over the limit was met; scanning then stops for good. */
  tooLong = false;

  constructor(private readonly source: string) {}

  /** The next line including its "\n" (if any), or undefined at the end or after an error. */
  next(): string | undefined {
    if (this.tooLong || this.pos >= this.source.length) return undefined;
    const nl = this.source.indexOf("\n", this.pos);
    const end = nl < 0 ? this.source.length : nl + 1;
    const line = this.source.slice(this.pos, end);
    // With a newline the whole token must fit the buffer; a final unterminated line must leave
    // room for the read that reports EOF.
    const limit = nl < 0 ? MAX_TOKEN_BYTES - 1 : MAX_TOKEN_BYTES;
    // A UTF-16 unit is at most 3 UTF-8 bytes, so short lines skip the byte count.
    if (line.length * 3 > limit && Buffer.byteLength(line, "utf8") > limit) {
      this.tooLong = true;
      return undefined;
    }
    this.pos = end;
    return line;
  }
}

/** Go's bytes.TrimRight(line, "\r\n"). */
export function trimNewline(line: string): string {
  let end = line.length;
  while (end > 0) {
    const c = line.charCodeAt(end - 1);
    if (c !== 0x0a && c !== 0x0d) break;
    end--;
  }
  return end === line.length ? line : line.slice(0, end);
}
