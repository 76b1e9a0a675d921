// The slice of BuildKit's shell word lexer (frontend/dockerfile/shell) that its parser uses to find
// heredoc markers: word splitting with quotes, escapes, `$var` / `${var...}` forms and `<<`,
// against an empty environment with unset variables left as written. Behaviour, including the
// odd corners (a `${x:-...}` resets the word being built; a lexing error means "no words"), is
// reproduced because it decides which words count as heredoc markers.

import { LineParseError, goQuote, isGoSpace } from "./parser-text.js";

export interface LexOptions {
  /** Keep quote characters in the words. */
  rawQuotes: boolean;
  /** Keep escape characters in the words. */
  rawEscapes: boolean;
}

const ESCAPE = "\\";
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
const SPECIAL_PARAMS = new Set(["@", "*", "#", "?", "-", "$", "!", "0"]);

class WordCollector {
  words: string[] = [];
  inWord = false;
  constructor(private readonly lexer: HeredocLexer) {}

  addChar(ch: string): void {
    const space = isGoSpace(ch.charCodeAt(0));
    if (space && this.inWord) {
      if (this.lexer.buffer.length !== 0) {
        this.words.push(this.lexer.buffer);
        this.lexer.buffer = "";
        this.inWord = false;
      }
    } else if (!space) {
      this.addRaw(ch);
    }
  }
  addRaw(text: string): void {
    this.lexer.buffer += text;
    this.inWord = true;
  }
  addString(text: string): void {
    for (const ch of text) this.addChar(ch);
  }
  finish(): string[] {
    if (this.lexer.buffer.length > 0) {
      this.words.push(this.lexer.buffer);
      this.lexer.buffer = "";
      this.inWord = false;
    }
    return this.words;
  }
}

class HeredocLexer {
  /** Shared by every nesting level, as in BuildKit; a nested level clears it on entry. */
  buffer = "";
  private pos = 0;
  private rawEscapes: boolean;

  constructor(
    private readonly chars: string[],
    private readonly rawQuotes: boolean,
    rawEscapes: boolean,
  ) {
    this.rawEscapes = rawEscapes;
    // text/scanner skips a byte order mark at the very start.
    if (chars[0] === "\ufeff") this.pos = 1;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }
  private next(): string | undefined {
    const ch = this.chars[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  /** Reads up to `stop` (undefined: end of input). Returns the text and the words. */
  processUntil(stop: string | undefined, rawEscapes: boolean): { text: string; words: string[] } {
    this.buffer = "";
    const words = new WordCollector(this);
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let text = "";
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.next();
          return { text, words: words.finish() };
        }
        const special = this.special(ch);
        if (special !== undefined) {
          text += special;
          if (ch === "$") words.addString(special);
          else words.addRaw(special);
          continue;
        }
        this.next();
        if (ch === ESCAPE) {
          if (this.rawEscapes) {
            words.addRaw(ch);
            text += ch;
          }
          const escaped = this.next();
          if (escaped === undefined) break;
          words.addRaw(escaped);
          text += escaped;
        } else {
          words.addChar(ch);
          text += ch;
        }
      }
      if (stop !== undefined) {
        throw new LineParseError(`unexpected end of statement while looking for matching ${stop}`);
      }
      return { text, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private special(ch: string): string | undefined {
    switch (ch) {
      case "$":
        return this.dollar();
      case "<":
        return this.possibleHeredoc();
      case "'":
        return this.singleQuoted();
      case '"':
        return this.doubleQuoted();
      default:
        return undefined;
    }
  }

  private singleQuoted(): string {
    let out = "";
    const open = this.next() ?? "";
    if (this.rawQuotes) out += open;
    for (;;) {
      const ch = this.next();
      if (ch === undefined) {
        throw new LineParseError("unexpected end of statement while looking for matching single-quote");
      }
      if (ch === "'") return this.rawQuotes ? out + ch : out;
      out += ch;
    }
  }

  private doubleQuoted(): string {
    let out = "";
    const open = this.next() ?? "";
    if (this.rawQuotes) out += open;
    for (;;) {
      const peeked = this.peek();
      if (peeked === undefined) {
        throw new LineParseError("unexpected end of statement while looking for matching double-quote");
      }
      if (peeked === '"') {
        this.next();
        return this.rawQuotes ? out + peeked : out;
      }
      if (peeked === "$") {
        out += this.dollar();
        continue;
      }
      let ch = this.next() ?? "";
      if (ch === ESCAPE) {
        if (this.rawEscapes) out += ch;
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === "$" || after === ESCAPE) ch = this.next() ?? "";
      }
      out += ch;
    }
  }

  /** With an empty environment every reference stays as written (normalised like BuildKit). */
  private dollar(): string {
    this.next();
    if (this.peek() !== "{") {
      const name = this.name();
      return "$" + name;
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new LineParseError("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw new LineParseError("syntax error: bad substitution");
    const name = this.name();
    let ch = this.next();
    // Go turns the EOF marker (-1) into U+FFFD when it builds the modifier text.
    let modifier = ch ?? "\ufffd";
    switch (ch) {
      case "}":
        return `\${${name}}`;
      case ":":
      case "+":
      case "-":
      case "?":
      case "#":
      case "%": {
        let nullIsUnset = false;
        if (ch === ":") {
          nullIsUnset = true;
          ch = this.next();
          modifier += ch ?? "\ufffd";
        }
        const raw = ch === "#" || ch === "%";
        if (nullIsUnset && raw) throw new LineParseError(`unsupported modifier (${modifier}) in substitution`);
        const word = this.nested("}", raw, "syntax error: missing '}'");
        return `\${${name}${modifier}${word}}`;
      }
      case "/": {
        if (this.peek() === "/") this.next();
        const pattern = this.nested("/", true, "syntax error: missing '/' in ${}");
        const replacement = this.nested("}", true, "syntax error: missing '}'");
        return `\${${name}/${pattern}/${replacement}}`;
      }
      default:
        throw new LineParseError(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  private nested(stop: string, rawEscapes: boolean, atEnd: string): string {
    try {
      return this.processUntil(stop, rawEscapes).text;
    } catch (err) {
      if (err instanceof LineParseError && this.peek() === undefined) throw new LineParseError(atEnd);
      throw err;
    }
  }

  private name(): string {
    let name = "";
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name.length === 0 && DIGIT.test(ch)) {
        while (ch !== undefined && DIGIT.test(ch)) {
          name += this.next();
          ch = this.peek();
        }
        return name;
      }
      if (name.length === 0 && SPECIAL_PARAMS.has(ch)) {
        this.next();
        return ch;
      }
      if (!LETTER.test(ch) && !DIGIT.test(ch) && ch !== "_") break;
      name += this.next();
    }
    return name;
  }

  private possibleHeredoc(): string {
    this.next();
    if (this.peek() !== "<") return "<";
    this.next();
    let out = "<<";
    for (let ch = this.peek(); ch === " " || ch === "\t" || ch === "\r"; ch = this.peek()) {
      out += ch;
      this.next();
    }
    return out;
  }
}

/**
 * Splits `text` into shell words. Throws LineParseError as BuildKit's ProcessWords errors
 * (`failed to process "...": ...`).
 */
export function lexWords(text: string, options: LexOptions): string[] {
  const lexer = new HeredocLexer(Array.from(text), options.rawQuotes, options.rawEscapes);
  try {
    return lexer.processUntil(undefined, options.rawEscapes).words;
  } catch (err) {
    if (err instanceof LineParseError) {
      throw new LineParseError(`failed to process ${goQuote(text)}: ${err.message}`);
    }
    if (err instanceof RangeError) {
      // Only reachable through absurdly deep `${a:-${b:-...}}` nesting (call stack exhausted).
      throw new LineParseError(`failed to process ${goQuote(text)}: substitutions nested too deeply`);
    }
    throw err;
  }
}
