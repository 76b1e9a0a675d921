// JSON as Go's encoding/json writes it (what `docker … --format '{{json .}}'` prints): HTML-sensitive
// characters and the JS line separators escaped, \b and \f spelled as \u escapes.

const ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
  "\\b": "\\u0008",
  "\\f": "\\u000c",
};

export function goJson(value: unknown, indent?: number): string {
  // Escape pairs are matched whole so that an escaped backslash followed by "b" is left alone.
  return JSON.stringify(value, null, indent).replace(/\\.|[<>&\u2028\u2029]/g, (m) => ESCAPES[m] ?? m);
}
