// Parser directives (`# syntax=`, `# escape=`, `# check=`): recognised only in the leading run of
// directive comments. The first line that is not a directive (blank line, other comment,
// instruction) ends the run for good.

import type { ParserDirectives } from "./ast.js";
import { LineParseError, goTrimLeft } from "./parser-text.js";

export type DirectiveName = keyof ParserDirectives;

const KNOWN: ReadonlySet<string> = new Set<DirectiveName>(["syntax", "escape", "check"]);
const NAME = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=/;

function isReSpace(code: number): boolean {
  // RE2's \s: [\t\n\f\r ]
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d;
}

/**
 * BuildKit matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`. The lazy value with a trailing
 * `\s*$` is quadratic in a backtracking engine, so the value is computed by hand: trimmed of
 * RE2 spaces, except that an all-space value still yields its last space character.
 */
function matchDirective(text: string): { name: string; value: string } | undefined {
  const m = NAME.exec(text);
  if (!m || m[1] === undefined) return undefined;
  const rest = text.slice(m[0].length);
  let start = 0;
  while (start < rest.length && isReSpace(rest.charCodeAt(start))) start++;
  if (start === rest.length) {
    return rest.length === 0 ? undefined : { name: m[1], value: rest.slice(-1) };
  }
  let end = rest.length;
  while (end > start && isReSpace(rest.charCodeAt(end - 1))) end--;
  return { name: m[1], value: rest.slice(start, end) };
}

export class DirectiveScanner {
  private done = false;
  private readonly seen = new Set<string>();
  readonly values: ParserDirectives = {};

  /**
   * Looks at one line (newline and leading whitespace already removed). Returns the directive it
   * holds, or undefined; throws LineParseError for a repeated directive.
   */
  parseLine(line: string): { name: DirectiveName; value: string } | undefined {
    if (this.done) return undefined;
    if (!line.startsWith("#")) {
      this.done = true;
      return undefined;
    }
    const found = matchDirective(goTrimLeft(line.slice(1)));
    const name = found?.name.toLowerCase();
    if (!found || name === undefined || !KNOWN.has(name)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(name)) throw new LineParseError(`only one ${name} parser directive can be used`);
    this.seen.add(name);
    const key = name as DirectiveName;
    this.values[key] = found.value;
    return { name: key, value: found.value };
  }
}

/** Only backslash and backtick may be the escape token. */
export function checkEscapeToken(value: string): string {
  if (value !== "`" && value !== "\\") {
    throw new LineParseError(`invalid escape token '${value}' does not match \` or \\`);
  }
  return value;
}
