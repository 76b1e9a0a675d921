// Property: whatever the text, parseDockerfile returns a well-formed tree or throws a
// DockerfileError, never anything else, and never hangs. Inputs are conformance Dockerfiles
// mutated with insertions/deletions of characters that matter to the parser.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { parseDockerfile } from "../src/dockerfile/parser.js";
import { dumpAst } from "./support/ast-dump.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const shared = path.resolve(repoRoot, "../shared/conformance/buildkit");

function loadCorpus(): string[] {
  const corpus = [
    "# syntax=docker/dockerfile:1\n# escape=`\nFROM alpine AS b\nRUN echo a `\n  b\n",
    "FROM x\nCOPY <<A <<-B /dest\nhello\nA\n\tworld\n\tB\nRUN <<'EOF' python3\nprint(1)\nEOF\n",
    'FROM x\nENV a=b c="d e" \\\n  f=g\nLABEL x y\nCMD ["a", "b"]\nHEALTHCHECK --interval=5s CMD ["c"]\n',
    "FROM x\nONBUILD RUN <<EOF\nhi\nEOF\nARG A=1 B\nEXPOSE 80 443\nUSER me\n",
  ];
  if (existsSync(shared)) {
    for (const dir of ["testfiles", "testfiles-negative"]) {
      for (const name of readdirSync(path.join(shared, dir)).sort()) {
        const file = path.join(shared, dir, name, "Dockerfile");
        if (existsSync(file)) corpus.push(readFileSync(file, "utf8"));
      }
    }
  }
  return corpus;
}

const corpus = loadCorpus();

const specials = [
  "\\", "`", '"', "'", "[", "]", "{", "}", ",", "<<", "<<-", "<<'EOF'", '<<"EOF"', "EOF", "3<<", "#",
  "# escape=`\n", "# escape=\\\n", "# syntax=x\n", "# check=y\n", "\n", "\r\n", "\r", " ", "\t", "\\\n",
  "`\n", "$", "${", "${a:-", "${a/b/c}", "--", "--flag=v ", "=", "ONBUILD ", "RUN ", "COPY ", "ADD ",
  "ENV ", "LABEL ", "ARG ", "HEALTHCHECK ", "CMD ", "FROM ", '["a", 1]', '["x"]', "é", "\u00a0", "\u0085",
  "\ufeff", "İ", "𝒜",
];

type Edit =
  | { kind: "insert"; at: number; text: string }
  | { kind: "delete"; at: number; length: number };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...specials), fc.string({ maxLength: 8 }), fc.string({ unit: "binary", maxLength: 4 })),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 12 }) }),
);

function applyEdits(source: string, edits: Edit[]): string {
  let text = source;
  for (const edit of edits) {
    const at = text.length === 0 ? 0 : edit.at % (text.length + 1);
    text = edit.kind === "insert" ? text.slice(0, at) + edit.text + text.slice(at) : text.slice(0, at) + text.slice(at + edit.length);
  }
  return text;
}

/** Parses and checks the tree's invariants; returns "ok" or "rejected", throws on anything else. */
function parseChecked(source: string): "ok" | "rejected" {
  let ast;
  try {
    ast = parseDockerfile(source);
  } catch (err) {
    if (err instanceof DockerfileError) {
      expect(err.message.startsWith("Dockerfile")).toBe(true);
      return "rejected";
    }
    throw err;
  }
  expect(ast.nodes.length).toBeGreaterThan(0);
  let previousEnd = 0;
  for (const node of ast.nodes) {
    expect(node.range.startLine).toBeGreaterThan(previousEnd);
    expect(node.range.endLine).toBeGreaterThanOrEqual(node.range.startLine);
    expect(node.keyword).toBe(node.keyword.toLowerCase());
    previousEnd = node.range.endLine;
  }
  expect(typeof dumpAst(ast)).toBe("string");
  return "ok";
}

describe("parser robustness (property)", () => {
  it("mutated Dockerfiles parse or fail with DockerfileError only", () => {
    const outcomes = { ok: 0, rejected: 0 };
    fc.assert(
      fc.property(fc.nat(), fc.array(editArb, { minLength: 1, maxLength: 8 }), (pick, edits) => {
        const base = corpus[pick % corpus.length] ?? "";
        outcomes[parseChecked(applyEdits(base, edits))]++;
      }),
      { numRuns: 2000 },
    );
    console.log(`property: ${outcomes.ok} parsed, ${outcomes.rejected} rejected`);
    // Both branches must actually be exercised for the property to mean something.
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes.rejected).toBeGreaterThan(0);
  });

  it("strings made only of parser-significant pieces parse or fail with DockerfileError only", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...specials), { maxLength: 40 }), (pieces) => {
        parseChecked(pieces.join(""));
      }),
      { numRuns: 2000 },
    );
  });

  it("pathological sizes and nesting still end in a result or a DockerfileError", () => {
    const cases = [
      `FROM x\nRUN ${"a \\\n".repeat(50_000)}b\n`,
      `${"ONBUILD \\\n".repeat(20_000)}RUN x\n`,
      `FROM x\nRUN <<${"${a:- \\\n".repeat(20_000)}\n`,
      `FROM x\nRUN ${"<<\\\n".repeat(20_000)}\n`,
      `FROM x\nRUN [${"[".repeat(20_000)}${"]".repeat(20_000)}]\n`,
      `FROM x\nRUN <<${" ".repeat(60_000)}<\n`,
      `# escape=${" ".repeat(60_000)}x\nFROM y\n`,
      `FROM x\nCOPY ${"--a \\\n".repeat(20_000)}b c\n`,
      `FROM x\nLABEL a=${"b".repeat(70_000)}\n`,
    ];
    expect(cases.map(parseChecked)).toEqual(["ok", "ok", "ok", "ok", "ok", "ok", "rejected", "ok", "rejected"]);
  });
});
