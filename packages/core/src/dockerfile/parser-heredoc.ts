// Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) in RUN, COPY and ADD lines. The
// bodies are read by the main loop; this module finds the markers and their properties.

import type { Heredoc } from "./ast.js";
import { lexWords } from "./parser-heredoc-lexer.js";
import { LineParseError } from "./parser-text.js";

const MAX_UINT64 = 18446744073709551615;

/**
 * BuildKit's `^(\d*)<<(-?)\s*([^<]*)$` (RE2: \d is ASCII, \s is [\t\n\f\r ]), matched by hand
 * because a backtracking engine is quadratic on long runs of spaces before a stray `<`.
 */
function matchMarker(word: string): { digits: string; chomp: boolean; rest: string } | undefined {
  let i = 0;
  while (i < word.length && word.charCodeAt(i) >= 0x30 && word.charCodeAt(i) <= 0x39) i++;
  const digits = word.slice(0, i);
  if (!word.startsWith("<<", i)) return undefined;
  i += 2;
  const chomp = word.charAt(i) === "-";
  if (chomp) i++;
  while (i < word.length && " \t\n\f\r".includes(word.charAt(i))) i++;
  const rest = word.slice(i);
  return rest.includes("<") ? undefined : { digits, chomp, rest };
}

function countQuotes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x27) n++;
  }
  return n;
}

/**
 * Interprets one shell word as a heredoc marker. Returns undefined when it is not one; throws
 * LineParseError for a malformed delimiter such as `<<"EOF`.
 */
export function parseHeredocMarker(word: string): Omit<Heredoc, "content"> | undefined {
  const m = matchMarker(word);
  if (!m) return undefined;
  const { digits, chomp, rest } = m;
  if (rest.length === 0) return undefined;
  const words = lexWords(rest, { rawQuotes: false, rawEscapes: false });
  if (words.length !== 1) return undefined;
  const raw = lexWords(rest, { rawQuotes: true, rawEscapes: false });
  if (raw.length !== words.length) {
    throw new LineParseError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const name = words[0] ?? "";
  // Quotes that disappear when quotes are processed mean part of the delimiter was quoted.
  const expand = countQuotes(name) === countQuotes(raw[0] ?? "");
  const heredoc: Omit<Heredoc, "content"> = { name, expand, chomp };
  // Go ignores the parse error and keeps 0 ("no descriptor") or the saturated maximum.
  const fd = digits.length === 0 ? 0 : Math.min(Number(digits), MAX_UINT64);
  if (fd !== 0) heredoc.fileDescriptor = fd;
  return heredoc;
}

/** All heredoc markers in an instruction line, in order. */
export function heredocMarkersInLine(line: string): Array<Omit<Heredoc, "content">> {
  let words: string[];
  try {
    words = lexWords(line, { rawQuotes: true, rawEscapes: true });
  } catch (err) {
    // BuildKit ignores a lexing error here and sees no words at all.
    if (err instanceof LineParseError) return [];
    throw err;
  }
  const markers: Array<Omit<Heredoc, "content">> = [];
  for (const word of words) {
    const marker = parseHeredocMarker(word);
    if (marker) markers.push(marker);
  }
  return markers;
}
