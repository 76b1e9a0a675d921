// Every BuildKit parser testfile BuildKit accepts goes through checkDockerfile without throwing
// (findings are expected); the ones BuildKit's instruction layer rejects make it throw the
// same DockerfileError a build would.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkDockerfile, RULE_NAMES } from "../src/check/index.js";
import { DockerfileError } from "../src/dockerfile/errors.js";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const testfiles = join(repoRoot, "..", "shared", "conformance", "buildkit", "testfiles");
const present = existsSync(testfiles);
if (!present && process.env.CI !== "true") console.warn(`check conformance: ${testfiles} is absent, skipping`);

/** Rejected by BuildKit's instructions.Parse (see instructions.conformance.test.ts for why). */
const REJECTED = new Set([
  "flags",
  "health",
  "json",
  "jeztah-invalid-json-json-inside-string",
  "jeztah-invalid-json-json-inside-string-double",
  "jeztah-invalid-json-single-quotes",
  "jeztah-invalid-json-unterminated-bracket",
  "jeztah-invalid-json-unterminated-string",
]);

describe.skipIf(!present && process.env.CI !== "true")("BuildKit testfiles through checkDockerfile", () => {
  const dirs = present ? readdirSync(testfiles).sort() : [];

  it("finds the testfiles", () => {
    expect(dirs.length).toBeGreaterThan(30);
    for (const name of REJECTED) expect(dirs).toContain(name);
  });

  for (const name of dirs) {
    const source = (): string => readFileSync(join(testfiles, name, "Dockerfile"), "utf8");
    if (REJECTED.has(name)) {
      it(`${name}: rejected`, () => {
        expect(() => checkDockerfile(source(), { file: "Dockerfile" })).toThrow(DockerfileError);
      });
      continue;
    }
    it(`${name}: accepted, findings well-formed`, () => {
      const text = source();
      const lineCount = text.split("\n").length;
      const { findings } = checkDockerfile(text, { file: "Dockerfile", ignorePatterns: ["*.md", "tmp"] });
      let previous = 0;
      for (const f of findings) {
        expect(RULE_NAMES).toContain(f.rule);
        expect(f.severity).toBe("warning");
        expect(f.message).not.toBe("");
        expect(f.fix).not.toBe("");
        expect(f.range.startLine).toBeGreaterThanOrEqual(Math.max(1, previous));
        expect(f.range.endLine).toBeGreaterThanOrEqual(f.range.startLine);
        expect(f.range.endLine).toBeLessThanOrEqual(lineCount);
        previous = f.range.startLine;
      }
    });
  }

  it("the testfiles exercise a good part of the rules", () => {
    const seen = new Set<string>();
    for (const name of dirs) {
      if (REJECTED.has(name)) continue;
      const text = readFileSync(join(testfiles, name, "Dockerfile"), "utf8");
      for (const f of checkDockerfile(text, { file: "Dockerfile" }).findings) seen.add(f.rule);
    }
    for (const rule of ["LegacyKeyValueFormat", "JSONArgsRecommended", "AddInsteadOfCopy", "NoEmptyContinuation", "AptGetUpdateAlone", "MultipleInstructionsDisallowed"]) {
      expect(seen, rule).toContain(rule);
    }
  });
});
