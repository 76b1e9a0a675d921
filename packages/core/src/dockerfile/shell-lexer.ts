/**
 * Dockerfile word expansion ($VAR, ${VAR:-default}, quotes, escapes) with the exact semantics of
 * BuildKit's shell lexer: ProcessWord → expandWord, ProcessWords → expandWords.
 */
import { goQuote, goToUpper } from "./shell-chars.js";
import { LexFailure, WordLexer, type LexOutput } from "./shell-word-lexer.js";

export type EscapeToken = "\\" | "`";

/** Variables visible to expansion: a lookup function. */
export type EnvLookup = (name: string) => string | undefined;

export interface ExpandOptions {
  /** Default "\\"; a Dockerfile's `# escape=` directive may choose "`". */
  escapeToken?: EscapeToken;
  /**
   * Variable names compare case-insensitively (Windows); default false. Exact with envLookup();
   * a hand-written lookup is asked for the name as written, then upper-cased.
   */
  caseInsensitive?: boolean;
  /** Skip erroring on unset vars for ${V:?}/${V?} — BuildKit's SkipUnsetEnv; default false. */
  skipUnsetEnv?: boolean;
  /** Keep quote characters in the output (BuildKit's RawQuotes); default false. */
  rawQuotes?: boolean;
  /** Keep escape tokens in the output (BuildKit's RawEscapes); default false. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (BuildKit's SkipProcessQuotes, used for heredocs); default false. */
  skipProcessQuotes?: boolean;
}

export interface WordExpansion {
  result: string;
  /** Names that were looked up and found (BuildKit's "matched" set, used to know which ARGs a step uses). */
  matched: Set<string>;
  /** Names looked up but not set. */
  unmatched: Set<string>;
}

export interface WordsExpansion {
  words: string[];
  matched: Set<string>;
  unmatched: Set<string>;
}

/** A word BuildKit would refuse to expand; the message matches BuildKit's. */
export class ShellExpansionError extends Error {
  override readonly name = "ShellExpansionError";
  constructor(
    /** The word as given. */
    readonly word: string,
    /** The message without the "failed to process" prefix, e.g. "syntax error: bad substitution". */
    readonly reason: string,
  ) {
    super(`failed to process ${goQuote(word)}: ${reason}`);
  }
}

/** Case-insensitive view of an envLookup() result, so Windows-style matching needs no key scan. */
const foldedLookup = Symbol("kiln.shell.foldedLookup");
type FoldableLookup = EnvLookup & { [foldedLookup]?: EnvLookup };

function resolveLookup(env: EnvLookup, caseInsensitive: boolean): EnvLookup {
  if (!caseInsensitive) return env;
  const folded = (env as FoldableLookup)[foldedLookup];
  if (folded) return folded;
  return (name) => env(name) ?? env(goToUpper(name));
}

const ESCAPE_CODES: Record<EscapeToken, number> = { "\\": 0x5c, "`": 0x60 };

function lex(word: string, env: EnvLookup, options: ExpandOptions): { out: LexOutput; lexer: WordLexer } {
  const escapeToken = options.escapeToken ?? "\\";
  const escape = ESCAPE_CODES[escapeToken];
  if (escape === undefined) throw new ShellExpansionError(word, `invalid escape token ${goQuote(String(escapeToken))}`);
  const lexer = new WordLexer(word, {
    escapeToken: escape,
    lookup: resolveLookup(env, options.caseInsensitive ?? false),
    skipUnsetEnv: options.skipUnsetEnv ?? false,
    rawQuotes: options.rawQuotes ?? false,
    rawEscapes: options.rawEscapes ?? false,
    skipProcessQuotes: options.skipProcessQuotes ?? false,
  });
  try {
    return { out: lexer.run(), lexer };
  } catch (err) {
    if (err instanceof LexFailure) throw new ShellExpansionError(word, err.message);
    // A lookup callback blowing the stack, or similar, must still surface as an expansion error.
    if (err instanceof RangeError) throw new ShellExpansionError(word, "substitutions nested too deeply");
    throw err;
  }
}

/** ProcessWord: expand one word; quotes are removed, the result is one string. */
export function expandWord(word: string, env: EnvLookup, options: ExpandOptions = {}): WordExpansion {
  const { out, lexer } = lex(word, env, options);
  return { result: out.result, matched: lexer.matched, unmatched: lexer.unmatched };
}

/**
 * ProcessWords: expand and split into fields on unquoted whitespace, as BuildKit's ProcessWords
 * (quirks included: text before a `${V:-…}` operand in the same field is lost, as in BuildKit).
 * matched/unmatched are filled too, although BuildKit's ProcessWords does not report them.
 */
export function expandWords(word: string, env: EnvLookup, options: ExpandOptions = {}): WordsExpansion {
  const { out, lexer } = lex(word, env, options);
  return { words: out.words, matched: lexer.matched, unmatched: lexer.unmatched };
}

export interface EnvLookupOptions {
  /** Also attach a case-insensitive view (used by expandWord's caseInsensitive); default true. */
  foldCase?: boolean;
}

function toEntries(vars: Iterable<string> | ReadonlyMap<string, string> | Record<string, string>): Iterable<[string, string]> {
  if (vars instanceof Map) return vars.entries() as Iterable<[string, string]>;
  if (typeof (vars as Iterable<string>)[Symbol.iterator] === "function" && typeof vars !== "string") {
    // "K=V" strings as in a process environment; "K" alone sets K to "" (BuildKit's EnvsFromSlice).
    return (function* () {
      for (const item of vars as Iterable<string>) {
        const eq = item.indexOf("=");
        yield eq < 0 ? [item, ""] : [item.slice(0, eq), item.slice(eq + 1)];
      }
    })();
  }
  return Object.entries(vars as Record<string, string>);
}

/** Helper: EnvLookup from a list of "K=V" strings or a Map/record (last one wins). */
export function envLookup(
  vars: Iterable<string> | ReadonlyMap<string, string> | Record<string, string>,
  options: EnvLookupOptions = {},
): EnvLookup {
  const exact = new Map<string, string>();
  const folded = new Map<string, string>();
  for (const [key, value] of toEntries(vars)) {
    exact.set(key, value);
    folded.set(goToUpper(key), value);
  }
  const lookup: FoldableLookup = (name) => exact.get(name);
  if (options.foldCase ?? true) lookup[foldedLookup] = (name) => folded.get(goToUpper(name));
  return lookup;
}
