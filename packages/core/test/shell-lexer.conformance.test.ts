// BuildKit's own lexer test vectors (frontend/dockerfile/shell/envVarTest and wordsTest), read from
// the shared conformance data and checked with the environment BuildKit's lex_test.go uses.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ShellExpansionError, envLookup, expandWord, expandWords } from "@kiln/core";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const dataDir = path.resolve(repoRoot, "../shared/conformance/buildkit");
const present = existsSync(path.join(dataDir, "envVarTest")) && existsSync(path.join(dataDir, "wordsTest"));
if (!present && process.env.CI === "true") throw new Error(`BuildKit conformance data missing at ${dataDir}`);
if (!present) console.warn(`skipping BuildKit lexer conformance: ${dataDir} not found`);

/** Lines as Go's bufio.Scanner yields them: no trailing empty line, "\r\n" endings stripped. */
function goLines(file: string): string[] {
  const lines = readFileSync(path.join(dataDir, file), "utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

interface Outcome {
  ok: boolean;
  detail: string;
}

/** Unix runs the A and U lines; Windows runs A and W, where names compare case-insensitively. */
function checkEnvVarTest(platform: "unix" | "windows"): { passed: number; total: number; failures: string[] } {
  const env = envLookup(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
  let passed = 0;
  let total = 0;
  const failures: string[] = [];
  goLines("envVarTest").forEach((raw, index) => {
    if (raw.startsWith("#")) return;
    const line = raw.trim();
    if (line === "") return;
    const parts = line.split("|");
    if (parts.length !== 3) throw new Error(`envVarTest:${index + 1}: expected 3 fields in ${JSON.stringify(line)}`);
    const [tag, source, expected] = parts.map((p) => p.trim()) as [string, string, string];
    if (!["A", "U", "W"].includes(tag)) throw new Error(`envVarTest:${index + 1}: bad platform ${tag}`);
    if (tag === (platform === "unix" ? "W" : "U")) return;
    total++;
    const outcome = runWord(source, expected, env, platform === "windows");
    if (outcome.ok) passed++;
    else failures.push(`envVarTest:${index + 1}: ${JSON.stringify(source)} ${outcome.detail}`);
  });
  return { passed, total, failures };
}

function runWord(source: string, expected: string, env: ReturnType<typeof envLookup>, caseInsensitive: boolean): Outcome {
  try {
    const got = expandWord(source, env, { caseInsensitive }).result;
    if (expected === "error") return { ok: false, detail: `expected an error, got ${JSON.stringify(got)}` };
    return { ok: got === expected, detail: `expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}` };
  } catch (err) {
    if (!(err instanceof ShellExpansionError)) throw err;
    return { ok: expected === "error", detail: `unexpected error: ${err.message}` };
  }
}

function checkWordsTest(): { passed: number; total: number; failures: string[] } {
  const envs: string[] = [];
  let passed = 0;
  let total = 0;
  const failures: string[] = [];
  goLines("wordsTest").forEach((line, index) => {
    if (line.startsWith("#")) return;
    if (line.startsWith("ENV ")) {
      envs.push(line.slice(3).replace(/^ +/, ""));
      return;
    }
    const parts = line.split("|");
    if (parts.length !== 2) throw new Error(`wordsTest:${index + 1}: expected exactly one | in ${JSON.stringify(line)}`);
    const source = (parts[0] as string).trim();
    const expected = (parts[1] as string).replace(/^ +/, "").split(",");
    total++;
    let got: string[];
    try {
      got = expandWords(source, envLookup([...envs])).words;
    } catch (err) {
      if (!(err instanceof ShellExpansionError)) throw err;
      got = ["error"];
    }
    if (JSON.stringify(got) === JSON.stringify(expected)) passed++;
    else failures.push(`wordsTest:${index + 1}: ${JSON.stringify(source)} expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  });
  return { passed, total, failures };
}

describe.runIf(present)("BuildKit shell lexer conformance", () => {
  it("passes every applicable line of envVarTest and wordsTest", () => {
    const vars = checkEnvVarTest("unix");
    const words = checkWordsTest();
    console.log(`envVarTest: ${vars.passed}/${vars.total}, wordsTest: ${words.passed}/${words.total}`);
    expect([...vars.failures, ...words.failures]).toEqual([]);
    // Guard against a parser slip silently dropping lines: the files hold well over 200 vectors.
    expect(vars.total).toBeGreaterThan(200);
    expect(words.total).toBeGreaterThan(20);
  });

  it("passes the A and W lines of envVarTest with Windows case-insensitive names", () => {
    const vars = checkEnvVarTest("windows");
    console.log(`envVarTest (Windows view): ${vars.passed}/${vars.total}`);
    expect(vars.failures).toEqual([]);
    expect(vars.total).toBeGreaterThan(200);
  });
});
