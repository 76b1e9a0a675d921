// Every BuildKit parser testfile through parseDockerfileModel: the ones BuildKit's instruction
// layer (instructions.Parse) rejects must be rejected with its message, and for the others the
// typed model must hold exactly the instructions of BuildKit's dump (`result`), in order.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { parseDockerfileModel, type DockerfileModel } from "../src/dockerfile/stages.js";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const conformance = join(repoRoot, "..", "shared", "conformance", "buildkit");
const testfiles = join(conformance, "testfiles");
const present = existsSync(testfiles);
if (!present && process.env.CI !== "true") {
  console.warn(`instructions conformance: ${testfiles} is absent, skipping`);
}

/**
 * What BuildKit's instruction layer says about each testfile it rejects, worked out from
 * frontend/dockerfile/instructions (parse.go, bflag.go): the first failing line and message.
 */
const REJECTED: Record<string, string> = {
  // `COPY --user=me`: COPY has no --user flag (and no flag within distance 3 to suggest).
  flags: "Dockerfile:3: unknown flag: --user",
  // A bare `HEALTHCHECK` line.
  health: "Dockerfile:4: HEALTHCHECK requires at least one argument",
  // CMD before any FROM: instructions.Parse finds no current stage.
  json: "Dockerfile:1: no build stage in current context",
  "jeztah-invalid-json-json-inside-string": "Dockerfile:1: no build stage in current context",
  "jeztah-invalid-json-json-inside-string-double": "Dockerfile:1: no build stage in current context",
  "jeztah-invalid-json-single-quotes": "Dockerfile:1: no build stage in current context",
  "jeztah-invalid-json-unterminated-bracket": "Dockerfile:1: no build stage in current context",
  "jeztah-invalid-json-unterminated-string": "Dockerfile:1: no build stage in current context",
};

function parse(dir: string): DockerfileModel | DockerfileError {
  try {
    return parseDockerfileModel(readFileSync(join(dir, "Dockerfile"), "utf8"));
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw err;
  }
}

/** The instruction keywords of BuildKit's dump, one node per line: `(from "x")` → "from". */
function dumpKinds(dir: string): string[] {
  return readFileSync(join(dir, "result"), "utf8")
    .split("\n")
    .filter((line) => line.startsWith("("))
    .map((line) => /^\(([a-z]+)/.exec(line)?.[1] ?? "?");
}

function modelKinds(model: DockerfileModel): string[] {
  return [
    ...model.globalArgs.map(() => "arg"),
    ...model.stages.flatMap((s) => [s.from.kind, ...s.instructions.map((i) => i.kind)]),
  ];
}

describe.skipIf(!present && process.env.CI !== "true")("BuildKit testfiles through parseDockerfileModel", () => {
  const dirs = present ? readdirSync(testfiles).sort() : [];

  it("finds the testfiles", () => {
    expect(dirs.length).toBeGreaterThan(30);
    for (const name of Object.keys(REJECTED)) expect(dirs).toContain(name);
  });

  for (const name of dirs) {
    const dir = join(testfiles, name);
    const expected = REJECTED[name];
    if (expected !== undefined) {
      it(`${name}: rejected like BuildKit`, () => {
        const result = parse(dir);
        expect(result).toBeInstanceOf(DockerfileError);
        expect((result as DockerfileError).message).toBe(expected);
      });
    } else {
      it(`${name}: accepted, same instructions as BuildKit's dump`, () => {
        const result = parse(dir);
        if (result instanceof DockerfileError) throw result;
        expect(modelKinds(result)).toEqual(dumpKinds(dir));
      });
    }
  }

  it("negative testfiles are rejected (by the parser, before the instruction layer)", () => {
    const negative = join(conformance, "testfiles-negative");
    for (const name of readdirSync(negative)) expect(parse(join(negative, name))).toBeInstanceOf(DockerfileError);
  });
});
