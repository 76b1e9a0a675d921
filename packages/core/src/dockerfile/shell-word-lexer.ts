/**
 * The state machine behind expandWord/expandWords, following BuildKit's shell lexer
 * (frontend/dockerfile/shell/lex.go) rule for rule, quirks included, because Dockerfiles must
 * expand to the same strings under kiln as under BuildKit.
 */
import { EOF, isGoDigit, isGoLetter, isGoSpace, runeText } from "./shell-chars.js";
import { ShellPatternError, replacePattern, trimPatternPrefix, trimPatternSuffix } from "./shell-pattern.js";
import { RuneScanner } from "./shell-scanner.js";

/** A lexing failure; the public layer wraps it with the word, like BuildKit's "failed to process". */
export class LexFailure extends Error {
  override readonly name = "LexFailure";
}

/** Nesting deeper than the JS stack can take; never rewritten into another message. */
export class LexNestingFailure extends LexFailure {}

export interface LexSettings {
  escapeToken: number;
  lookup: (name: string) => string | undefined;
  skipUnsetEnv: boolean;
  rawQuotes: boolean;
  rawEscapes: boolean;
  skipProcessQuotes: boolean;
}

/** `${` levels allowed; Go's growable stack takes far more, but no real Dockerfile comes close. */
export const MAX_NESTING = 1000;

const DOLLAR = 0x24;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const COLON = 0x3a;
const SQUOTE = 0x27;
const DQUOTE = 0x22;
const LT = 0x3c;
const SLASH = 0x2f;

/** BuildKit keeps one word buffer per lexer, and every nested level resets it (see processStopOn). */
interface SharedBuffer {
  text: string;
}

/** Field splitting state of one processStopOn level (BuildKit's wordsStruct). */
class Fields {
  readonly words: string[] = [];
  private inWord = false;

  constructor(private readonly buf: SharedBuffer) {}

  addChar(cp: number): void {
    if (isGoSpace(cp)) {
      if (this.inWord && this.buf.text.length !== 0) {
        this.words.push(this.buf.text);
        this.buf.text = "";
        this.inWord = false;
      }
    } else {
      this.addRawChar(cp);
    }
  }

  addRawChar(cp: number): void {
    this.buf.text += runeText(cp);
    this.inWord = true;
  }

  addString(text: string): void {
    for (const ch of text) this.addChar(ch.codePointAt(0) as number);
  }

  addRawString(text: string): void {
    this.buf.text += text;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf.text.length > 0) {
      this.words.push(this.buf.text);
      this.buf.text = "";
      this.inWord = false;
    }
    return this.words;
  }
}

export interface LexOutput {
  result: string;
  words: string[];
}

export class WordLexer {
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly scanner: RuneScanner;
  private readonly shared: SharedBuffer = { text: "" };
  private rawEscapes: boolean;
  private depth = 0;

  constructor(
    word: string,
    private readonly settings: LexSettings,
  ) {
    this.scanner = new RuneScanner(word);
    this.rawEscapes = settings.rawEscapes;
  }

  run(): LexOutput {
    return this.processStopOn(EOF, this.settings.rawEscapes);
  }

  private processStopOn(stop: number, rawEscapes: boolean): LexOutput {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      // The outermost level is the word itself, not a substitution.
      if (++this.depth > MAX_NESTING + 1) throw new LexNestingFailure(`substitutions nested deeper than ${MAX_NESTING} levels`);
      return this.scanUntil(stop);
    } finally {
      this.rawEscapes = saved;
      this.depth--;
    }
  }

  private scanUntil(stop: number): LexOutput {
    const s = this.scanner;
    let result = "";
    this.shared.text = "";
    const fields = new Fields(this.shared);
    const quotes = !this.settings.skipProcessQuotes;

    while (s.peek() !== EOF) {
      let ch = s.peek();
      if (stop !== EOF && ch === stop) {
        s.next();
        return { result, words: fields.finish() };
      }
      if (ch === DOLLAR) {
        const text = this.processDollar();
        result += text;
        fields.addString(text);
      } else if (ch === LT || (quotes && (ch === SQUOTE || ch === DQUOTE))) {
        const text = ch === LT ? this.processPossibleHeredoc() : ch === SQUOTE ? this.processSingleQuote() : this.processDoubleQuote();
        result += text;
        fields.addRawString(text);
      } else {
        ch = s.next();
        if (ch === this.settings.escapeToken) {
          if (this.rawEscapes) {
            fields.addRawChar(ch);
            result += runeText(ch);
          }
          // The escape token protects the next character; at the end of the word it vanishes.
          ch = s.next();
          if (ch === EOF) break;
          fields.addRawChar(ch);
        } else {
          fields.addChar(ch);
        }
        result += runeText(ch);
      }
    }
    if (stop !== EOF) throw new LexFailure(`unexpected end of statement while looking for matching ${runeText(stop)}`);
    return { result, words: fields.finish() };
  }

  private processSingleQuote(): string {
    // Everything up to the next ' is literal; there is no way to escape a single quote inside.
    const s = this.scanner;
    const raw = this.settings.rawQuotes;
    let result = "";
    const open = s.next();
    if (raw) result += runeText(open);
    for (;;) {
      const ch = s.next();
      if (ch === EOF) throw new LexFailure("unexpected end of statement while looking for matching single-quote");
      if (ch === SQUOTE) return raw ? result + runeText(ch) : result;
      result += runeText(ch);
    }
  }

  private processDoubleQuote(): string {
    // Literal except `$` expansions; the escape token only escapes `"`, `$` and itself.
    const s = this.scanner;
    const escape = this.settings.escapeToken;
    const raw = this.settings.rawQuotes;
    let result = "";
    const open = s.next();
    if (raw) result += runeText(open);
    for (;;) {
      const peeked = s.peek();
      if (peeked === EOF) throw new LexFailure("unexpected end of statement while looking for matching double-quote");
      if (peeked === DQUOTE) {
        s.next();
        return raw ? result + '"' : result;
      }
      if (peeked === DOLLAR) {
        result += this.processDollar();
        continue;
      }
      let ch = s.next();
      if (ch === escape) {
        if (this.rawEscapes) result += runeText(ch);
        const after = s.peek();
        if (after === EOF) continue; // the loop then reports the missing quote
        if (after === DQUOTE || after === DOLLAR || after === escape) ch = s.next();
      }
      result += runeText(ch);
    }
  }

  private processDollar(): string {
    const s = this.scanner;
    const skipUnset = this.settings.skipUnsetEnv;
    s.next();

    if (s.peek() !== LBRACE) {
      const name = this.processName();
      if (name === "") return "$";
      const value = this.getEnv(name);
      if (value === undefined && skipUnset) return "$" + name;
      return value ?? "";
    }

    s.next();
    const first = s.peek();
    if (first === EOF) throw new LexFailure("syntax error: missing '}'");
    if (first === LBRACE || first === RBRACE || first === COLON) throw new LexFailure("syntax error: bad substitution");

    const name = this.processName();
    let ch = s.next();
    let chs = runeText(ch);

    if (ch === RBRACE) {
      const value = this.getEnv(name);
      if (value === undefined && skipUnset) return "${" + name + "}";
      return value ?? "";
    }
    if (ch === SLASH) return this.processReplace(name);

    let nullIsUnset = false;
    if (ch === COLON) {
      nullIsUnset = true;
      ch = s.next();
      chs += runeText(ch);
    } else if (!"+-?#%".includes(runeText(ch))) {
      throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
    }
    // From here on BuildKit reads the operand whatever the character after ':' was, and only then
    // rejects an unknown modifier such as ${V:=x} (or, with skipUnsetEnv and V unset, keeps it).
    const isTrim = ch === 0x23 || ch === 0x25;
    if (nullIsUnset && isTrim) throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
    let word = this.operand(RBRACE, isTrim, "syntax error: missing '}'");

    const value = this.getEnv(name);
    if (value === undefined && skipUnset) return "${" + name + chs + word + "}";

    switch (runeText(ch)) {
      case "-":
        return value === undefined || (nullIsUnset && value === "") ? word : value;
      case "+":
        return value === undefined || (nullIsUnset && value === "") ? "" : word;
      case "?":
        if (value === undefined) throw new LexFailure(`${name}: ${word !== "" ? word : "is not allowed to be unset"}`);
        if (nullIsUnset && value === "") throw new LexFailure(`${name}: ${word !== "" ? word : "is not allowed to be empty"}`);
        return value;
      case "#":
      case "%": {
        // One operator character means shortest match, a doubled one (## or %%) longest.
        const greedy = word.startsWith(runeText(ch));
        if (greedy) word = word.slice(1);
        return this.patternOp(() =>
          ch === 0x25 ? trimPatternSuffix(word, value ?? "", greedy) : trimPatternPrefix(word, value ?? "", greedy),
        );
      }
      default:
        throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const s = this.scanner;
    const all = s.peek() === SLASH;
    if (all) s.next();
    const pattern = this.operand(SLASH, true, "syntax error: missing '/' in ${}");
    const replacement = this.operand(RBRACE, true, "syntax error: missing '}'");
    const value = this.getEnv(name);
    if (value === undefined && this.settings.skipUnsetEnv) return "${" + name + "/" + pattern + "/" + replacement + "}";
    return this.patternOp(() => replacePattern(value ?? "", pattern, replacement, all));
  }

  /** Text of a ${} operand up to `stop`; failing at the end of input reports `missingMessage`. */
  private operand(stop: number, rawEscapes: boolean, missingMessage: string): string {
    try {
      return this.processStopOn(stop, rawEscapes).result;
    } catch (err) {
      if (err instanceof LexFailure && !(err instanceof LexNestingFailure) && this.scanner.peek() === EOF) {
        throw new LexFailure(missingMessage);
      }
      throw err;
    }
  }

  private patternOp(op: () => string): string {
    try {
      return op();
    } catch (err) {
      if (err instanceof ShellPatternError) throw new LexFailure(err.message);
      throw err;
    }
  }

  /** A parameter name: letters/digits/underscore, a run of digits (positional), or one special char. */
  private processName(): string {
    const s = this.scanner;
    let name = "";
    while (s.peek() !== EOF) {
      const ch = s.peek();
      if (name === "" && isGoDigit(ch)) {
        while (s.peek() !== EOF && isGoDigit(s.peek())) name += runeText(s.next());
        return name;
      }
      if (name === "" && isSpecialParam(ch)) return runeText(s.next());
      if (!isGoLetter(ch) && !isGoDigit(ch) && ch !== 0x5f) break;
      name += runeText(s.next());
    }
    return name;
  }

  private processPossibleHeredoc(): string {
    // `<<` keeps the blanks after it attached, so `<< EOF` stays one field.
    const s = this.scanner;
    s.next();
    if (s.peek() !== LT) return "<";
    s.next();
    let space = "";
    while (s.peek() === 0x09 || s.peek() === 0x0d || s.peek() === 0x20) space += runeText(s.next());
    return "<<" + space;
  }

  private getEnv(name: string): string | undefined {
    const value = this.settings.lookup(name);
    if (value !== undefined) this.matched.add(name);
    else this.unmatched.add(name);
    return value;
  }
}

/** POSIX special parameters ($@ $* $# $? $- $$ $! $0); never set in a Dockerfile. */
function isSpecialParam(cp: number): boolean {
  return "@*#?-$!0".includes(runeText(cp));
}
