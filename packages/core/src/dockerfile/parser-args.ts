// Per-instruction argument parsing, following BuildKit's dispatch table: which instructions take
// a JSON-or-string form, which split on whitespace, which take name=value pairs.

import { parseJsonArray } from "./parser-json.js";
import {
  LineParseError,
  WHITESPACE_RUN,
  fromByteString,
  goQuote,
  isGoSpace,
  toByteString,
} from "./parser-text.js";
import { parseWords } from "./parser-words.js";

export interface ParsedArgs {
  args: string[];
  json: boolean;
}

type ArgParser = (rest: string, escapeToken: string) => ParsedArgs;

const none: ParsedArgs = { args: [], json: false };

/** Whole rest as one argument (MAINTAINER, USER, WORKDIR, STOPSIGNAL). */
const asString: ArgParser = (rest) => (rest === "" ? none : { args: [rest], json: false });

/** FROM, EXPOSE: words split on `[\t\v\f\r ]+`, quotes not considered. */
const whitespaceSplit: ArgParser = (rest) =>
  rest === "" ? none : { args: rest.split(WHITESPACE_RUN), json: false };

/** RUN, CMD, ENTRYPOINT, SHELL: JSON array, else the whole rest as one string. */
const maybeJson: ArgParser = (rest) => {
  if (rest === "") return none;
  const parsed = parseJsonArray(rest);
  if (parsed.kind === "strings") return { args: parsed.values, json: true };
  return { args: [rest], json: false };
};

/** ADD, COPY, VOLUME: JSON array, else whitespace-separated words. */
const maybeJsonList: ArgParser = (rest, escapeToken) => {
  const parsed = parseJsonArray(rest);
  if (parsed.kind === "strings") return { args: parsed.values, json: true };
  return whitespaceSplit(rest, escapeToken);
};

/** ARG: quote-aware words, kept as written (`name`, `name=value`). */
const nameOrNameValue: ArgParser = (rest, escapeToken) => ({
  args: parseWords(rest, escapeToken),
  json: false,
});

/**
 * ENV, LABEL: `name=value ...` gives triples (name, value, "="); the legacy `name value` form (no
 * `=` in the first word) gives one triple (name, rest, "").
 */
function nameValue(keyword: string): ArgParser {
  return (rest, escapeToken) => {
    const words = parseWords(rest, escapeToken);
    const first = words[0];
    if (first === undefined) return none;
    if (!first.includes("=")) {
      const m = WHITESPACE_RUN.exec(rest);
      if (!m) throw new LineParseError(`${keyword} must have two arguments`);
      return { args: [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ""], json: false };
    }
    const args: string[] = [];
    for (const word of words) {
      const eq = word.indexOf("=");
      if (eq < 0) {
        throw new LineParseError(
          `Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`,
        );
      }
      args.push(word.slice(0, eq), word.slice(eq + 1), "=");
    }
    return { args, json: false };
  };
}

/**
 * HEALTHCHECK: a type word (NONE, CMD, ...) then a JSON-or-string command. BuildKit finds the end
 * of the type word byte by byte, which is reproduced for non-ASCII text.
 */
const healthcheck: ArgParser = (rest, escapeToken) => {
  const bytes = toByteString(rest);
  let sep = 0;
  while (sep < bytes.length && !isGoSpace(bytes.charCodeAt(sep))) sep++;
  let next = sep;
  while (next < bytes.length && isGoSpace(bytes.charCodeAt(next))) next++;
  if (sep === 0) return none;
  const command = maybeJson(fromByteString(bytes.slice(next)), escapeToken);
  return { args: [fromByteString(bytes.slice(0, sep)), ...command.args], json: command.json };
};

const PARSERS: ReadonlyMap<string, ArgParser> = new Map<string, ArgParser>([
  ["add", maybeJsonList],
  ["arg", nameOrNameValue],
  ["cmd", maybeJson],
  ["copy", maybeJsonList],
  ["entrypoint", maybeJson],
  ["env", nameValue("ENV")],
  ["expose", whitespaceSplit],
  ["from", whitespaceSplit],
  ["healthcheck", healthcheck],
  ["label", nameValue("LABEL")],
  ["maintainer", asString],
  ["run", maybeJson],
  ["shell", maybeJson],
  ["stopsignal", asString],
  ["user", asString],
  ["volume", maybeJsonList],
  ["workdir", asString],
]);

/**
 * Arguments of a (lower-cased) keyword other than ONBUILD. Unknown keywords are accepted with one
 * empty argument, as BuildKit's parser keeps them (a later stage rejects them).
 */
export function parseArgs(keyword: string, rest: string, escapeToken: string): ParsedArgs {
  const parser = PARSERS.get(keyword);
  if (!parser) return { args: [""], json: false };
  return parser(rest, escapeToken);
}
