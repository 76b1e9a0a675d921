// BuildKit's build checks through checkDockerfile: each rule fires on a bad Dockerfile, with
// BuildKit's message and the right line, and stays quiet on the corrected one; plus the
// `# check=` directive and formatFindings.
import { describe, expect, it } from "vitest";
import { checkDockerfile, formatFindings, type CheckOptions, type Finding } from "../src/check/index.js";
import { DockerfileError } from "../src/dockerfile/errors.js";

const check = (src: string, opts: Partial<CheckOptions> = {}): Finding[] =>
  checkDockerfile(src, { file: "Dockerfile", ...opts }).findings;
const of = (src: string, rule: string, opts: Partial<CheckOptions> = {}): Finding[] =>
  check(src, opts).filter((f) => f.rule === rule);
const messages = (src: string, rule: string, opts: Partial<CheckOptions> = {}): string[] =>
  of(src, rule, opts).map((f) => `${f.range.startLine}: ${f.message}`);

describe("stage names and keyword casing", () => {
  it("StageNameCasing", () => {
    expect(messages("FROM alpine AS Builder\n", "StageNameCasing")).toEqual(["1: Stage name 'Builder' should be lowercase"]);
    expect(of("FROM alpine AS Builder\n", "StageNameCasing")[0]?.fix).toContain("AS builder");
    expect(of("FROM alpine AS builder\n", "StageNameCasing")).toEqual([]);
  });

  it("FromAsCasing", () => {
    expect(messages("FROM alpine as builder\n", "FromAsCasing")).toEqual(["1: 'as' and 'FROM' keywords' casing do not match"]);
    expect(messages("from alpine AS builder\n", "FromAsCasing")).toEqual(["1: 'AS' and 'from' keywords' casing do not match"]);
    expect(of("FROM alpine AS builder\nfrom alpine as b2\n", "FromAsCasing")).toEqual([]);
    // A mixed-case FROM is ConsistentInstructionCasing's business only.
    expect(of("From alpine as builder\n", "FromAsCasing")).toEqual([]);
  });

  it("ConsistentInstructionCasing follows the majority", () => {
    const src = "FROM alpine\nrun echo a\nRUN echo b\nCopy a b\n";
    expect(messages(src, "ConsistentInstructionCasing")).toEqual([
      "2: Command 'run' should match the case of the command majority (uppercase)",
      "4: Command 'Copy' should match the case of the command majority (uppercase)",
    ]);
    expect(messages("from alpine\nrun echo a\nRUN echo b\n", "ConsistentInstructionCasing")).toEqual([
      "3: Command 'RUN' should match the case of the command majority (lowercase)",
    ]);
    expect(of("FROM alpine\nRUN echo a\nCOPY a b\n", "ConsistentInstructionCasing")).toEqual([]);
    expect(of("from alpine\nrun echo a\n", "ConsistentInstructionCasing")).toEqual([]);
  });

  it("DuplicateStageName and ReservedStageName", () => {
    const src = "FROM alpine AS base\nFROM alpine AS Base\nFROM alpine AS scratch\nFROM alpine AS context\n";
    expect(messages(src, "DuplicateStageName")).toEqual(['2: Duplicate stage name "base", stage names should be unique']);
    expect(messages(src, "ReservedStageName")).toEqual([
      '3: Stage name should not use the same name as reserved stage "scratch"',
      '4: Stage name should not use the same name as reserved stage "context"',
    ]);
    expect(of("FROM alpine AS base\nFROM alpine AS final\n", "DuplicateStageName")).toEqual([]);
  });

  it("NoEmptyContinuation reports the line where the instruction ends", () => {
    expect(messages("FROM alpine\nRUN echo a \\\n\n  b\n", "NoEmptyContinuation")).toEqual(["4: Empty continuation line"]);
    expect(of("FROM alpine\nRUN echo a \\\n  b\n", "NoEmptyContinuation")).toEqual([]);
  });

  it("MaintainerDeprecated and LegacyKeyValueFormat", () => {
    const src = "FROM alpine\nMAINTAINER Jane <j@x>\nENV A 1\nLABEL b 2\nENV C=3\n";
    expect(messages(src, "MaintainerDeprecated")).toEqual(["2: Maintainer instruction is deprecated in favor of using label"]);
    expect(of(src, "MaintainerDeprecated")[0]?.fix).toContain('LABEL org.opencontainers.image.authors="Jane <j@x>"');
    expect(messages(src, "LegacyKeyValueFormat")).toEqual([
      '3: "ENV key=value" should be used instead of legacy "ENV key value" format',
      '4: "LABEL key=value" should be used instead of legacy "LABEL key value" format',
    ]);
    expect(of("FROM alpine\nENV A=1\nLABEL b=2\n", "LegacyKeyValueFormat")).toEqual([]);
  });
});

describe("FROM arguments and platforms", () => {
  it("UndefinedArgInFrom, with a suggestion for a near miss", () => {
    expect(messages("FROM alpine:$VER\n", "UndefinedArgInFrom")).toEqual(["1: FROM argument 'VER' is not declared"]);
    expect(messages("ARG VERSION=3.20\nFROM alpine:${VERSON}\n", "UndefinedArgInFrom")).toEqual([
      "2: FROM argument 'VERSON' is not declared (did you mean VERSION?)",
    ]);
    expect(of("ARG VER=3.20\nFROM alpine:$VER\n", "UndefinedArgInFrom")).toEqual([]);
    expect(of("ARG VER\nFROM alpine:3${VER}\n", "UndefinedArgInFrom")).toEqual([]);
    expect(of("FROM --platform=$BUILDPLATFORM alpine\n", "UndefinedArgInFrom")).toEqual([]);
  });

  it("InvalidDefaultArgInFrom looks at defaults only", () => {
    expect(messages("ARG TAG\nFROM alpine:${TAG}\n", "InvalidDefaultArgInFrom")).toEqual([
      "2: Default value for ARG alpine:${TAG} results in empty or invalid base image name",
    ]);
    expect(messages("ARG IMAGE\nFROM $IMAGE\n", "InvalidDefaultArgInFrom", { buildArgs: { IMAGE: "alpine" } })).toHaveLength(1);
    expect(of("ARG TAG=3.20\nFROM alpine:${TAG}\n", "InvalidDefaultArgInFrom")).toEqual([]);
  });

  it("RedundantTargetPlatform", () => {
    expect(messages("FROM --platform=$TARGETPLATFORM alpine AS builder\n", "RedundantTargetPlatform")).toEqual([
      "1: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
    ]);
    expect(of("FROM --platform=$BUILDPLATFORM alpine\n", "RedundantTargetPlatform")).toEqual([]);
  });

  it("FromPlatformFlagConstDisallowed unless the stage is named after the platform", () => {
    expect(messages("FROM --platform=linux/amd64 alpine AS base\n", "FromPlatformFlagConstDisallowed")).toEqual([
      '1: FROM --platform flag should not use constant value "linux/amd64"',
    ]);
    expect(of("FROM --platform=linux/amd64 alpine AS build_amd64\n", "FromPlatformFlagConstDisallowed")).toEqual([]);
    expect(of("FROM --platform=${BUILDPLATFORM} alpine AS base\n", "FromPlatformFlagConstDisallowed")).toEqual([]);
    expect(of("FROM alpine AS base\n", "FromPlatformFlagConstDisallowed")).toEqual([]);
  });
});

describe("stage dispatch rules", () => {
  it("UndefinedVar in a stage whose environment is known", () => {
    expect(messages("FROM scratch\nCOPY $foo .\n", "UndefinedVar")).toEqual(["2: Usage of undefined variable '$foo'"]);
    expect(messages("FROM scratch\nENV PATH=$PAHT:/app/bin\n", "UndefinedVar")).toEqual([
      "2: Usage of undefined variable '$PAHT' (did you mean $PATH?)",
    ]);
    expect(messages("FROM scratch\nARG VERSION=$foo\n", "UndefinedVar")).toEqual(["2: Usage of undefined variable '$foo'"]);
    expect(of("FROM scratch\nARG foo\nCOPY $foo .\n", "UndefinedVar")).toEqual([]);
    expect(of("FROM scratch AS a\nENV X=1\nFROM a\nCOPY $X .\n", "UndefinedVar")).toEqual([]);
    // Shell-form RUN is expanded by the shell, not by the Dockerfile.
    expect(of("FROM scratch\nRUN echo $foo\n", "UndefinedVar")).toEqual([]);
  });

  it("UndefinedVar on an external image needs its environment", () => {
    const src = "FROM python\nARG VERSION=$PYTHON_VERSION\nARG X=$PYTHON_VERSON\n";
    expect(of(src, "UndefinedVar")).toEqual([]);
    // Without the image's environment, only near misses of the Dockerfile's own variables.
    expect(messages("FROM alpine\nARG APP_VERSION=1\nCOPY app-$APP_VERSON.tgz $HOME/\n", "UndefinedVar")).toEqual([
      "3: Usage of undefined variable '$APP_VERSON' (did you mean $APP_VERSION?)",
    ]);
    // GOPATH is one edit pair away from PATH but is the golang image's own variable.
    expect(of("FROM golang\nWORKDIR $GOPATH/src\nENV PATH=$PAHT:/x\n", "UndefinedVar").map((f) => f.message)).toEqual([
      "Usage of undefined variable '$PAHT' (did you mean $PATH?)",
    ]);
    const imageEnv = (image: string): string[] | undefined => (image === "python" ? ["PATH=/usr/bin", "PYTHON_VERSION=3.12"] : undefined);
    expect(messages(src, "UndefinedVar", { imageEnv })).toEqual([
      "3: Usage of undefined variable '$PYTHON_VERSON' (did you mean $PYTHON_VERSION?)",
    ]);
  });

  it("JSONArgsRecommended for shell-form CMD/ENTRYPOINT unless a SHELL is set", () => {
    expect(messages("FROM alpine\nENTRYPOINT my-program start\n", "JSONArgsRecommended")).toEqual([
      "2: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals",
    ]);
    expect(of("FROM alpine\nENTRYPOINT my-program start\n", "JSONArgsRecommended")[0]?.fix).toContain(
      'ENTRYPOINT ["my-program", "start"]',
    );
    expect(of('FROM alpine\nENTRYPOINT ["my-program", "start"]\nCMD ["x"]\n', "JSONArgsRecommended")).toEqual([]);
    expect(of('FROM alpine AS a\nSHELL ["/bin/bash", "-c"]\nFROM a\nCMD echo hi\n', "JSONArgsRecommended")).toEqual([]);
  });

  it("MultipleInstructionsDisallowed points at the instruction that is ignored", () => {
    const src = 'FROM alpine\nCMD ["a"]\nHEALTHCHECK NONE\nCMD ["b"]\nHEALTHCHECK NONE\nFROM alpine\nCMD ["c"]\n';
    expect(messages(src, "MultipleInstructionsDisallowed")).toEqual([
      "2: Multiple CMD instructions should not be used in the same stage because only the last one will be used",
      "3: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used",
    ]);
    expect(of('FROM alpine\nCMD ["a"]\nENTRYPOINT ["b"]\n', "MultipleInstructionsDisallowed")).toEqual([]);
  });

  it("WorkdirRelativePath only until an absolute WORKDIR is set (base stages included)", () => {
    expect(messages("FROM nginx AS web\nWORKDIR usr/share/nginx/html\n", "WorkdirRelativePath")).toEqual([
      '2: Relative workdir "usr/share/nginx/html" can have unexpected results if the base image changes',
    ]);
    expect(of("FROM nginx\nWORKDIR /usr/share\nWORKDIR nginx/html\n", "WorkdirRelativePath")).toEqual([]);
    expect(of("FROM nginx AS a\nWORKDIR /app\nFROM a\nWORKDIR sub\n", "WorkdirRelativePath")).toEqual([]);
    expect(of("FROM scratch\nENV D=/srv\nWORKDIR $D/app\n", "WorkdirRelativePath")).toEqual([]);
  });

  it("SecretsUsedInArgOrEnv on stage ARG and ENV names", () => {
    const src = "FROM alpine\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x\nARG PUBLIC_KEY\nARG KEY_FILE\nENV TOKENIZER=1\n";
    expect(messages(src, "SecretsUsedInArgOrEnv")).toEqual([
      '2: Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")',
      '3: Do not use ARG or ENV instructions for sensitive data (ENV "DB_PASSWORD")',
    ]);
    expect(of(src, "SecretsUsedInArgOrEnv")[0]?.fix).toContain("--mount=type=secret");
  });

  it("ExposeProtoCasing and ExposeInvalidFormat", () => {
    const src = "FROM alpine\nEXPOSE 80/TCP\nEXPOSE 127.0.0.1:80:80 8080:80/udp\n";
    expect(messages(src, "ExposeProtoCasing")).toEqual(["2: Defined protocol '80/TCP' in EXPOSE instruction should be lowercase"]);
    expect(messages(src, "ExposeInvalidFormat")).toEqual([
      "3: EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'",
      "3: EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80/udp'",
    ]);
    expect(of("FROM alpine\nEXPOSE 80/tcp 53/udp 8000-8010\n", "ExposeProtoCasing")).toEqual([]);
    expect(of("FROM alpine\nEXPOSE 80/tcp 53/udp 8000-8010\n", "ExposeInvalidFormat")).toEqual([]);
  });

  it("CopyIgnoredFile with .dockerignore patterns", () => {
    const ignorePatterns = ["tmp", "*.log"];
    const src = "FROM scratch\nCOPY ./tmp/helloworld.txt /x\nADD app.log /y\nCOPY ./forever/hello.txt /z\nCOPY --from=alpine /tmp/a /a\n";
    expect(messages(src, "CopyIgnoredFile", { ignorePatterns })).toEqual([
      '2: Attempting to Copy file "tmp/helloworld.txt" that is excluded by .dockerignore',
      '3: Attempting to Add file "app.log" that is excluded by .dockerignore',
    ]);
    expect(of(src, "CopyIgnoredFile")).toEqual([]);
    // Exceptions make exclusion impossible to tell statically: BuildKit does not check then.
    expect(of(src, "CopyIgnoredFile", { ignorePatterns: [...ignorePatterns, "!tmp/keep"] })).toEqual([]);
    expect(of("FROM scratch\nCOPY . /app\n", "CopyIgnoredFile", { ignorePatterns })).toEqual([]);
    expect(of("FROM scratch\nCOPY . /app\n", "CopyIgnoredFile", { ignorePatterns: ["*"] })).toHaveLength(1);
  });

  it("InvalidDefinitionDescription is experimental", () => {
    const bad = "# a non-descriptive comment\nFROM scratch AS base\n# another one\nARG VERSION=1\n";
    expect(of(bad, "InvalidDefinitionDescription")).toEqual([]);
    const enabled = `# check=experimental=InvalidDefinitionDescription\n${bad}`;
    expect(messages(enabled, "InvalidDefinitionDescription")).toEqual([
      "3: Comment for FROM should follow the format: `# base <description>`",
      "5: Comment for ARG should follow the format: `# VERSION <description>`",
    ]);
    const good = "# check=experimental=all\n# base is a stage for compiling source\nFROM scratch AS base\n# VERSION This is the version number.\nARG VERSION=1\n";
    expect(of(good, "InvalidDefinitionDescription")).toEqual([]);
  });
});

describe("# check= directive", () => {
  const src = "FROM alpine as Builder\nCMD echo hi\n";

  it("reports warnings by default", () => {
    const f = check(src);
    expect(f.map((x) => x.rule)).toEqual(["StageNameCasing", "FromAsCasing", "JSONArgsRecommended"]);
    expect(f.every((x) => x.severity === "warning")).toBe(true);
    expect(f[0]?.url).toBe("https://docs.docker.com/go/dockerfile/rule/stage-name-casing/");
  });

  it("skip= drops rules, skip=all drops everything", () => {
    expect(check(`# check=skip=StageNameCasing, FromAsCasing\n${src}`).map((x) => x.rule)).toEqual(["JSONArgsRecommended"]);
    expect(check(`# check=skip=all\n${src}`)).toEqual([]);
  });

  it("error=true promotes findings to errors", () => {
    const f = check(`# check=error=true\n${src}`);
    expect(f).toHaveLength(3);
    expect(f.every((x) => x.severity === "error")).toBe(true);
    const both = check(`# check=skip=JSONArgsRecommended;error=true\n${src}`);
    expect(both.map((x) => `${x.rule}:${x.severity}`)).toEqual(["StageNameCasing:error", "FromAsCasing:error"]);
  });

  it("applies to kiln's own rules too", () => {
    const copyAll = "FROM node\nCOPY . .\nRUN npm ci\n";
    expect(of(copyAll, "CopyAllBeforeDependencyInstall")).toHaveLength(1);
    expect(check(`# check=skip=CopyAllBeforeDependencyInstall\n${copyAll}`)).toEqual([]);
  });

  it("a check comment right above an instruction skips rules for it only", () => {
    const f = check('FROM alpine\n# check=skip=JSONArgsRecommended\nCMD echo a\nFROM alpine\nENTRYPOINT echo b\n');
    expect(f.map((x) => `${x.range.startLine}:${x.rule}`)).toEqual(["5:JSONArgsRecommended"]);
  });

  it("BUILDKIT_DOCKERFILE_CHECK build arg overrides the directive", () => {
    const f = check(`# check=skip=all\n${src}`, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: "skip=JSONArgsRecommended" } });
    expect(f.map((x) => x.rule)).toEqual(["StageNameCasing", "FromAsCasing"]);
  });

  it("rejects malformed options like BuildKit", () => {
    expect(() => check(`# check=foo=bar\n${src}`)).toThrow(DockerfileError);
    expect(() => check(`# check=foo=bar\n${src}`)).toThrow(/failed to parse check options: invalid check option "foo"/);
    expect(() => check(`# check=error=maybe\n${src}`)).toThrow(/failed to parse check options/);
  });

  it("throws DockerfileError for a Dockerfile BuildKit rejects", () => {
    expect(() => check("RUN echo no stage\n")).toThrow(DockerfileError);
  });
});

describe("formatFindings", () => {
  it("prints location, rule, message, fix and a summary", () => {
    const findings = check("FROM alpine AS Builder\nCOPY . .\nRUN npm install\n");
    const text = formatFindings(findings, { file: "app/Dockerfile" });
    expect(text).toContain("WARNING: StageNameCasing - app/Dockerfile:1\nStage name 'Builder' should be lowercase\n  fix: ");
    expect(text).toContain("WARNING: CopyAllBeforeDependencyInstall - app/Dockerfile:3\n");
    expect(text).toContain("       COPY package.json package-lock.json ./\n");
    expect(text.trimEnd().endsWith(`Check complete, ${findings.length} warnings have been found!`)).toBe(true);
  });

  it("quotes the offending lines when given the source", () => {
    const source = "FROM alpine\nRUN apt-get update \\\n  && true\n";
    const text = formatFindings(check(source), { file: "Dockerfile", source });
    expect(text).toContain("WARNING: AptGetUpdateAlone - Dockerfile:2-3\n");
    expect(text).toContain("  2 | >>> RUN apt-get update \\\n  3 | >>>   && true\n  fix: ");
  });

  it("says so when nothing was found, and marks errors", () => {
    expect(formatFindings([], { file: "Dockerfile" })).toBe("Check complete, no warnings found.\n");
    const text = formatFindings(check("# check=error=true\nFROM alpine AS X\n"), { file: "Dockerfile" });
    expect(text).toContain("ERROR: StageNameCasing - Dockerfile:2");
  });
});
