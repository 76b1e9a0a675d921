// Splitting an instruction line: keyword, `--flag` words, and the quote-aware word splitter that
// ENV, LABEL and ARG use. Quotes and escapes are kept in the words (they are removed later, when
// the words are expanded), except in flags, where BuildKit removes them right away.

import { WHITESPACE_RUN, goTrimSpace, isGoSpace } from "./parser-text.js";

export interface SplitLine {
  keyword: string;
  flags: string[];
  rest: string;
}

/** Splits `KEYWORD --flags... rest`; `rest` is trimmed. */
export function splitCommand(line: string, escapeToken: string): SplitLine {
  const trimmed = goTrimSpace(line);
  const m = WHITESPACE_RUN.exec(trimmed);
  if (!m) return { keyword: trimmed, flags: [], rest: "" };
  const keyword = trimmed.slice(0, m.index);
  const { rest, flags } = extractFlags(trimmed.slice(m.index + m[0].length), escapeToken);
  return { keyword, flags, rest: goTrimSpace(rest) };
}

/**
 * Reads leading words that start with `--` (quotes and escape tokens removed) until a word that
 * does not, or a bare `--`. BuildKit walks this part byte by byte, so a non-ASCII character in a
 * flag comes out as its UTF-8 bytes read as Latin-1 ("é" -> "Ã©"); that is reproduced by feeding
 * such characters through the same state machine one UTF-8 byte at a time. Only the flags are
 * walked, so the cost does not depend on the length of the rest of the line.
 */
function extractFlags(text: string, escapeToken: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  const esc = escapeToken.charCodeAt(0);
  let word = "";
  let blankOk = false;
  let inWord = false;
  let quote = 0;
  /** A pending escape token: the next byte is taken literally. */
  let escaped = false;

  const endWord = (): void => {
    if (blankOk || word.length > 0) flags.push(word);
    word = "";
    blankOk = false;
  };
  /** Feeds one byte; returns true when the flags end and the arguments start at this byte. */
  const feed = (ch: number, next: number | undefined): boolean => {
    if (escaped) {
      escaped = false;
      word += String.fromCharCode(ch);
      return false;
    }
    if (!inWord && quote === 0) {
      if (isGoSpace(ch)) return false;
      if (ch !== 0x2d || next !== 0x2d) return true;
      inWord = true;
    }
    if (quote === 0) {
      if (isGoSpace(ch)) {
        if (word === "--") return true;
        endWord();
        inWord = false;
        return false;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOk = true;
        return false;
      }
    } else if (ch === quote) {
      quote = 0;
      return false;
    }
    if (ch === esc) {
      if (next === undefined) {
        // A trailing escape token is dropped (and ends a quoted section).
        quote = 0;
        return false;
      }
      escaped = true;
      return false;
    }
    word += String.fromCharCode(ch);
    return false;
  };

  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i) ?? 0;
    const width = code > 0xffff ? 2 : 1;
    if (code < 0x80) {
      if (feed(code, i + 1 < text.length ? nextLeadByte(text, i + 1) : undefined)) {
        return { rest: text.slice(i), flags };
      }
      i += width;
      continue;
    }
    const bytes = Buffer.from(text.slice(i, i + width), "utf8");
    for (let b = 0; b < bytes.length; b++) {
      const last = b + 1 === bytes.length;
      const next = last ? (i + width < text.length ? nextLeadByte(text, i + width) : undefined) : bytes[b + 1];
      if (feed(bytes[b] ?? 0, next)) {
        if (b === 0) return { rest: text.slice(i), flags };
        // Stopping inside a character leaves broken UTF-8 in Go; shown here as U+FFFD per byte.
        return { rest: "\ufffd".repeat(bytes.length - b) + text.slice(i + width), flags };
      }
    }
    i += width;
  }
  if ((inWord || quote !== 0) && word !== "--" && (blankOk || word.length > 0)) flags.push(word);
  return { rest: "", flags };
}

/** First UTF-8 byte of the character at `i`. */
function nextLeadByte(text: string, i: number): number {
  const code = text.codePointAt(i) ?? 0;
  if (code < 0x80) return code;
  if (code < 0x800) return 0xc0 | (code >> 6);
  if (code < 0x10000) return 0xe0 | (code >> 12);
  return 0xf0 | (code >> 18);
}

/**
 * Splits on whitespace outside quotes. Quotes and escape tokens stay in the words; an escape token
 * keeps the next character literal (outside single quotes); a trailing escape token is dropped.
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  const esc = escapeToken.charCodeAt(0);
  let word = "";
  let blankOk = false;
  let inWord = false;
  let quote = 0;
  for (let pos = 0; pos < rest.length; pos++) {
    const ch = rest.charCodeAt(pos);
    if (quote !== 0) {
      if (ch === quote) quote = 0;
      if (ch === esc && quote !== 0x27) {
        if (pos + 1 === rest.length) {
          quote = 0;
          continue;
        }
        word += rest[pos];
        pos++;
      }
      word += rest[pos];
      continue;
    }
    if (isGoSpace(ch)) {
      if (inWord && (blankOk || word.length > 0)) words.push(word);
      inWord = false;
      word = "";
      blankOk = false;
      continue;
    }
    inWord = true;
    if (ch === 0x27 || ch === 0x22) {
      quote = ch;
      blankOk = true;
    } else if (ch === esc) {
      if (pos + 1 === rest.length) continue;
      word += rest[pos];
      pos++;
    }
    word += rest[pos];
  }
  if (inWord && (blankOk || word.length > 0)) words.push(word);
  return words;
}
