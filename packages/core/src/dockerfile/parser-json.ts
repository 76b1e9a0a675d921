// The exec (JSON array) form of an instruction. Anything that is not a well-formed JSON array
// falls back to the string form; a well-formed array holding something other than strings is an
// error. Go's encoding/json is the reference for what "well-formed" means.

import { LineParseError, goTrimLeft } from "./parser-text.js";

export type JsonArrayResult =
  | { kind: "strings"; values: string[] }
  | { kind: "not-json" };

/** Go's json decoder gives up on documents nested deeper than this. */
const GO_MAX_DEPTH = 10_000;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function parseJsonArray(rest: string): JsonArrayResult {
  const text = goTrimLeft(rest);
  if (!text.startsWith("[")) return { kind: "not-json" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: "not-json" };
  }
  if (!Array.isArray(parsed)) return { kind: "not-json" };
  const values: string[] = [];
  for (const item of parsed as unknown[]) {
    if (typeof item !== "string") {
      if (goRejectsDocument(text)) return { kind: "not-json" };
      throw new LineParseError("when using JSON array syntax, arrays must be comprised of strings only");
    }
    // Go decodes an escaped lone surrogate ("\ud800") to U+FFFD.
    values.push(item.replace(LONE_SURROGATE, "\ufffd"));
  }
  return { kind: "strings", values };
}

/**
 * Cases where JSON.parse succeeds but Go's json.Unmarshal into []any fails: a number that
 * overflows float64, or nesting deeper than Go allows. Only consulted on the (rare) path where a
 * non-string element was found, since both need non-string elements.
 */
function goRejectsDocument(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > GO_MAX_DEPTH) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      // The document is valid JSON, so this is a well-formed number literal.
      let end = i + 1;
      while (end < text.length && /[-+.eE0-9]/.test(text.charAt(end))) end++;
      if (!Number.isFinite(Number(text.slice(i, end)))) return true;
      i = end - 1;
    }
  }
  return false;
}
