import { describe, expect, it } from "vitest";
import type { DockerfileAst, InstructionNode } from "../src/dockerfile/ast.js";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { expandInstruction } from "../src/dockerfile/instruction-expand.js";
import { GlobalArgScope } from "../src/dockerfile/instruction-argscope.js";
import type { ArgInstruction, FromInstruction } from "../src/dockerfile/instructions.js";
import { findStage, modelFromAst, parseStages } from "../src/dockerfile/stages.js";
import { node } from "./instructions-helpers.js";

function ast(nodes: InstructionNode[]): DockerfileAst {
  nodes.forEach((n, i) => (n.range = { startLine: i + 1, endLine: i + 1 }));
  return { file: "Dockerfile", directives: {}, escapeToken: "\\", nodes, warnings: [] };
}

describe("parseStages", () => {
  it("groups instructions by FROM and collects global ARGs", () => {
    const parsed = parseStages(
      ast([
        node("arg", ["VERSION=1.22"]),
        node("arg", ["BASE"]),
        node("from", ["golang:$VERSION", "AS", "Build"]),
        node("run", ["go build"]),
        node("from", ["scratch"]),
        node("copy", ["/out", "/"], { flags: ["--from=build"] }),
        node("cmd", ["/app"], { json: true }),
      ]),
    );
    expect(parsed.globalArgs.map((a) => a.args)).toEqual([[{ key: "VERSION", value: "1.22" }], [{ key: "BASE" }]]);
    expect(parsed.stages.map((s) => [s.name, s.index, s.from.image, s.instructions.map((i) => i.kind)])).toEqual([
      ["build", 0, "golang:$VERSION", ["run"]],
      [undefined, 1, "scratch", ["copy", "cmd"]],
    ]);
    expect(parsed.stages[1]?.range).toEqual({ startLine: 5, endLine: 7 });
    expect(findStage(parsed.stages, "BUILD")?.index).toBe(0);
    expect(findStage(parsed.stages, "1")?.from.image).toBe("scratch");
    expect(findStage(parsed.stages, "nope")).toBeUndefined();
  });
  it("rejects anything but ARG before the first FROM", () => {
    const run = (): unknown => parseStages(ast([node("arg", ["A"]), node("run", ["x"]), node("from", ["a"])]));
    expect(run).toThrow(DockerfileError);
    expect(run).toThrow("Dockerfile:2: no build stage in current context");
  });
  it("reports the first bad instruction with its line", () => {
    expect(() => parseStages(ast([node("from", ["a"]), node("form", ["b"], { original: "FORM b" })]))).toThrow(
      "Dockerfile:2: unknown instruction: FORM (did you mean FROM?)",
    );
  });
  it("warns like BuildKit's linter on duplicate and reserved names, MAINTAINER and legacy ENV", () => {
    const { warnings } = parseStages(
      ast([
        node("from", ["a", "AS", "x"]),
        node("maintainer", ["me"]),
        node("env", ["A", "1", ""]),
        node("from", ["b", "AS", "X"]),
        node("from", ["c", "AS", "context"]),
      ]),
    );
    expect(warnings.map((w) => [w.range.startLine, w.message])).toEqual([
      [2, "Maintainer instruction is deprecated in favor of using label"],
      [3, '"ENV key=value" should be used instead of legacy "ENV key value" format'],
      [4, 'Duplicate stage name "x", stage names should be unique'],
      [5, 'Stage name should not use the same name as reserved stage "context"'],
    ]);
  });
  it("the model needs at least one stage", () => {
    expect(() => modelFromAst(ast([node("arg", ["A"])]))).toThrow("dockerfile contains no stages to build");
    expect(modelFromAst(ast([node("from", ["a"])])).escapeToken).toBe("\\");
  });
});

const arg = (...words: string[]): ArgInstruction =>
  ({ kind: "arg", args: words.map((w) => (w.includes("=") ? { key: w.split("=")[0], value: w.slice(w.indexOf("=") + 1) } : { key: w })), range: { startLine: 1, endLine: 1 }, original: "", comments: [] }) as ArgInstruction;

const platforms = {
  buildPlatform: { os: "linux", architecture: "amd64" },
  targetPlatform: { os: "linux", architecture: "arm", variant: "v7" },
};

describe("ARG scoping", () => {
  it("global ARGs and automatic platform args are visible in FROM", () => {
    const global = GlobalArgScope.create([arg("VERSION=1.22", "IMAGE=golang:${VERSION}")], { ...platforms, target: "final" });
    const from = { kind: "from", image: "$IMAGE", platform: "$BUILDPLATFORM", range: { startLine: 3, endLine: 3 }, original: "", comments: [] } as FromInstruction;
    const r = expandInstruction(from, global.lookup());
    expect(r.instruction).toMatchObject({ image: "golang:1.22", platform: "linux/amd64" });
    expect(r.usedArgs).toEqual(["IMAGE", "BUILDPLATFORM"]);
    expect(global.get("TARGETPLATFORM")).toBe("linux/arm/v7");
    expect(global.get("TARGETARCH")).toBe("arm");
    expect(global.get("TARGETVARIANT")).toBe("v7");
    expect(global.get("BUILDOS")).toBe("linux");
    expect(global.get("TARGETSTAGE")).toBe("final");
    expect(global.isDeclared("VERSION")).toBe(true);
    expect(global.isDeclared("TARGETARCH")).toBe(false);
  });
  it("global ARGs are not visible in a stage unless redeclared bare", () => {
    const global = GlobalArgScope.create([arg("VERSION=1.22")], platforms);
    const stage = global.newStage();
    expect(stage.lookup()("VERSION")).toBeUndefined();
    expect(stage.lookup()("TARGETARCH")).toBeUndefined();
    expect(stage.declareArg({ key: "VERSION" })).toEqual({ key: "VERSION", value: "1.22" });
    expect(stage.declareArg({ key: "TARGETARCH" })).toEqual({ key: "TARGETARCH", value: "arm" });
    expect(stage.lookup()("VERSION")).toBe("1.22");
    // Redeclared with a default: the default wins over the global value.
    const other = global.newStage();
    expect(other.declareArg({ key: "VERSION", value: "2" }).value).toBe("2");
    // Declared without any value: declared but unset.
    expect(other.declareArg({ key: "NOTHING" })).toEqual({ key: "NOTHING" });
    expect(other.lookup()("NOTHING")).toBeUndefined();
    expect(other.runHistoryPrefix()).toBe("|2 VERSION=2 NOTHING=");
  });
  it("build args override defaults, global and in stages", () => {
    const global = GlobalArgScope.create([arg("VERSION=1.22", "DERIVED=v$VERSION")], {
      ...platforms,
      buildArgs: { VERSION: "1.23", LEVEL: "3", TARGETARCH: "riscv64" },
    });
    expect(global.get("VERSION")).toBe("1.23");
    expect(global.get("DERIVED")).toBe("v1.23");
    expect(global.get("TARGETARCH")).toBe("riscv64");
    // Undeclared build args are not variables anywhere.
    expect(global.get("LEVEL")).toBeUndefined();
    const stage = global.newStage();
    expect(stage.lookup()("LEVEL")).toBeUndefined();
    expect(stage.declareArg({ key: "LEVEL", value: "1" }).value).toBe("3");
    expect(stage.declareArg({ key: "VERSION" }).value).toBe("1.23");
  });
  it("ARG defaults expand in the stage environment", () => {
    const stage = GlobalArgScope.create([], platforms).newStage();
    stage.setEnv("HOME", "/root");
    expect(stage.declareArg({ key: "CACHE", value: "$HOME/.cache" }).value).toBe("/root/.cache");
    expect(stage.declareArg({ key: "CACHE2", value: "${CACHE}2" }).value).toBe("/root/.cache2");
  });
  it("ENV shadows the ARG of the same name", () => {
    const global = GlobalArgScope.create([], { ...platforms, buildArgs: { CONT_IMG_VER: "v2.0.1" } });
    const stage = global.newStage();
    stage.declareArg({ key: "CONT_IMG_VER" });
    expect(stage.get("CONT_IMG_VER")).toBe("v2.0.1");
    expect(stage.buildArgsAmong(["CONT_IMG_VER"])).toEqual([{ key: "CONT_IMG_VER", value: "v2.0.1" }]);
    stage.setEnv("CONT_IMG_VER", "v1.0.0");
    expect(stage.lookup()("CONT_IMG_VER")).toBe("v1.0.0");
    expect(stage.runEnv()).toContain("CONT_IMG_VER=v1.0.0");
    // No longer a build arg for cache purposes: its value is a constant.
    expect(stage.buildArgsAmong(["CONT_IMG_VER"])).toEqual([]);
    // BuildKit records the declared ARG in RUN history with the value the step sees.
    expect(stage.runHistoryPrefix()).toBe("|1 CONT_IMG_VER=v1.0.0");
  });
  it("proxy args reach RUN without declaration and stay out of history unless declared", () => {
    const global = GlobalArgScope.create([], {
      ...platforms,
      buildArgs: { HTTP_PROXY: "http://p:3128", no_proxy: "localhost", OTHER: "x" },
    });
    const stage = global.newStage();
    expect(stage.runEnv().sort()).toEqual(
      ["HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128", "NO_PROXY=localhost", "no_proxy=localhost"].sort(),
    );
    expect(stage.lookup()("HTTP_PROXY")).toBeUndefined();
    expect(stage.usedBuildArgs()).toEqual([]);
    expect(stage.runHistoryPrefix()).toBe("");
    stage.declareArg({ key: "HTTP_PROXY" });
    expect(stage.runHistoryPrefix()).toBe("|1 HTTP_PROXY=http://p:3128");
    expect(stage.lookup()("HTTP_PROXY")).toBe("http://p:3128");
  });
  it("a stage built FROM another stage inherits its ARGs and ENV", () => {
    const global = GlobalArgScope.create([], { ...platforms, buildArgs: { MODE: "release" } });
    const base = global.newStage();
    base.declareArg({ key: "MODE", value: "debug" });
    base.setEnv("PATH", "/usr/bin");
    const child = global.newStage(base);
    expect(child.lookup()("MODE")).toBe("release");
    expect(child.lookup()("PATH")).toBe("/usr/bin");
    expect(child.usedBuildArgs()).toEqual([{ key: "MODE", value: "release" }]);
    // The child's changes do not leak back.
    child.setEnv("X", "1");
    expect(base.get("X")).toBeUndefined();
  });
  it("base image ENV seeds the stage", () => {
    const stage = GlobalArgScope.create([], platforms).newStage();
    stage.setImageEnv(["PATH=/usr/local/bin:/usr/bin", "EMPTY", "A=b=c"]);
    expect(stage.runEnv()).toEqual(["PATH=/usr/local/bin:/usr/bin", "EMPTY=", "A=b=c"]);
  });
  it("reports bad meta ARG defaults with their location", () => {
    const bad = { ...arg("X=${Y"), range: { startLine: 2, endLine: 2 } } as ArgInstruction;
    expect(() => GlobalArgScope.create([bad], platforms)).toThrow(/^Dockerfile:2: failed to process/);
  });
});
