// Cases from BuildKit's own lint integration tests (frontend/dockerfile/dockerfile_lint_test.go):
// the same Dockerfiles must give the same rules, lines and messages, sorted as that test sorts
// them (by line, then message). Base images are never pulled here, so the cases rely on what a
// Dockerfile alone tells.
import { describe, expect, it } from "vitest";
import { checkDockerfile, type CheckOptions } from "../src/check/index.js";

interface Case {
  name: string;
  dockerfile: string;
  options?: Partial<CheckOptions>;
  /** "line RuleName: message" */
  expected: string[];
}

const CASES: Case[] = [
  {
    name: "CopyIgnoredFile",
    dockerfile: "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n",
    options: { ignorePatterns: ["", "Dockerfile"] },
    expected: [
      '3 CopyIgnoredFile: Attempting to Copy file "Dockerfile" that is excluded by .dockerignore',
      '4 CopyIgnoredFile: Attempting to Add file "Dockerfile" that is excluded by .dockerignore',
    ],
  },
  {
    name: "CopyIgnoredFile looks at sources only",
    dockerfile: "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\nFROM base\nCOPY --from=base /foobar /Dockerfile\n",
    options: { ignorePatterns: ["foobar"] },
    expected: [],
  },
  {
    name: "SecretsUsedInArgOrEnv",
    dockerfile:
      "\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\n",
    expected: [
      '3 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "SECRET_PASSPHRASE")',
      '4 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "SUPER_Secret")',
      '5 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "password")',
      '5 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "secret")',
      '6 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "auth")',
      '6 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "super_duper_secret_token")',
      '7 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "apikey")',
      '8 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "git_key")',
    ],
  },
  {
    name: "UndefinedVar in every stage",
    dockerfile: "\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n",
    expected: ["3 UndefinedVar: Usage of undefined variable '$foo'", "6 UndefinedVar: Usage of undefined variable '$bar'"],
  },
  { name: "check=skip=all", dockerfile: "#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n", expected: [] },
  {
    name: "check=skip=ConsistentInstructionCasing,FromAsCasing",
    dockerfile: "#check=skip=ConsistentInstructionCasing,FromAsCasing\nFROM scratch as base\ncopy Dockerfile .\n",
    expected: [],
  },
  {
    name: "check=skip=ConsistentInstructionCasing",
    dockerfile: "#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n",
    expected: ["2 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"],
  },
  {
    name: "BUILDKIT_DOCKERFILE_CHECK overrides the directive",
    dockerfile: "#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n",
    options: { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: "skip=ConsistentInstructionCasing;error=true" } },
    expected: ["2 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"],
  },
  {
    name: "StageNameCasing and FromAsCasing",
    dockerfile:
      "\n# warning: stage name should be lowercase\nFROM scratch AS BadStageName\n\n# warning: 'as' should match 'FROM' cmd casing.\nFROM scratch as base2\n\nFROM scratch AS base3\n",
    expected: ["3 StageNameCasing: Stage name 'BadStageName' should be lowercase", "6 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"],
  },
  {
    name: "FromAsCasing lowercase from",
    dockerfile: "\n# warning: 'AS' should match 'from' cmd casing.\nfrom scratch AS base\n\nfrom scratch as base2\n",
    expected: ["3 FromAsCasing: 'AS' and 'from' keywords' casing do not match"],
  },
  {
    name: "NoEmptyContinuation",
    dockerfile: "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n",
    expected: ["6 NoEmptyContinuation: Empty continuation line"],
  },
  {
    name: "ConsistentInstructionCasing mixed FROM",
    dockerfile: "\n# warning: 'FROM' should be either lowercased or uppercased\nFrom scratch as base\nFROM scratch AS base2\n",
    expected: ["3 ConsistentInstructionCasing: Command 'From' should match the case of the command majority (uppercase)"],
  },
  {
    name: "ConsistentInstructionCasing copy",
    dockerfile: "\nFROM scratch\n# warning: 'copy' should match command majority's casing (uppercase)\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
    expected: ["4 ConsistentInstructionCasing: Command 'copy' should match the case of the command majority (uppercase)"],
  },
  {
    name: "ConsistentInstructionCasing frOM",
    dockerfile: "\n# warning: 'frOM' should be either lowercased or uppercased\nfrOM scratch as base\nfrom scratch as base2\n",
    expected: ["3 ConsistentInstructionCasing: Command 'frOM' should match the case of the command majority (lowercase)"],
  },
  {
    name: "ConsistentInstructionCasing COPY in lowercase file",
    dockerfile: "\nfrom scratch\n# warning: 'COPY' should match command majority's casing (lowercase)\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
    expected: ["4 ConsistentInstructionCasing: Command 'COPY' should match the case of the command majority (lowercase)"],
  },
  {
    name: "ConsistentInstructionCasing from",
    dockerfile: "\n# warning: 'from' should match command majority's casing (uppercase)\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\nCOPY Dockerfile /baz\n",
    expected: ["3 ConsistentInstructionCasing: Command 'from' should match the case of the command majority (uppercase)"],
  },
  {
    name: "ConsistentInstructionCasing FROM",
    dockerfile: "\n# warning: 'FROM' should match command majority's casing (lowercase)\nFROM scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\ncopy Dockerfile /baz\n",
    expected: ["3 ConsistentInstructionCasing: Command 'FROM' should match the case of the command majority (lowercase)"],
  },
  { name: "consistent lowercase", dockerfile: "\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n", expected: [] },
  { name: "consistent uppercase", dockerfile: "\nFROM scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\n", expected: [] },
  { name: "heredoc RUN", dockerfile: "\nFROM alpine\nRUN <<'EOT'\nenv\nEOT\n", expected: [] },
  {
    name: "DuplicateStageName",
    dockerfile: "\nFROM scratch AS b\nFROM scratch AS b\n",
    expected: ['3 DuplicateStageName: Duplicate stage name "b", stage names should be unique'],
  },
  { name: "distinct stage names", dockerfile: "\nFROM scratch AS b1\nFROM scratch AS b2\n", expected: [] },
  {
    name: "ReservedStageName",
    dockerfile: "\nFROM scratch AS scratch\nFROM scratch AS context\n",
    expected: [
      '2 ReservedStageName: Stage name should not use the same name as reserved stage "scratch"',
      '3 ReservedStageName: Stage name should not use the same name as reserved stage "context"',
    ],
  },
  { name: "scratch as base", dockerfile: "\nFROM scratch\nFROM scratch AS a\n", expected: [] },
  {
    name: "JSONArgsRecommended CMD",
    dockerfile: "\nFROM scratch\nCMD mycommand\n",
    expected: ["3 JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"],
  },
  {
    name: "JSONArgsRecommended ENTRYPOINT",
    dockerfile: "\nFROM scratch\nENTRYPOINT mycommand\n",
    expected: ["3 JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals"],
  },
  { name: "SHELL then CMD", dockerfile: '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nCMD mycommand\n', expected: [] },
  { name: "SHELL then ENTRYPOINT", dockerfile: '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nENTRYPOINT mycommand\n', expected: [] },
  {
    name: "SHELL inherited",
    dockerfile: '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nENTRYPOINT mycommand\n',
    expected: [],
  },
  {
    name: "MaintainerDeprecated",
    dockerfile: "\nFROM scratch\nMAINTAINER me@example.org\n",
    expected: ["3 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"],
  },
  { name: "authors label", dockerfile: '\nFROM scratch\nLABEL org.opencontainers.image.authors="me@example.org"\n', expected: [] },
  { name: "declared base ARG", dockerfile: "\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n", expected: [] },
  { name: "redeclared BUILDPLATFORM", dockerfile: "\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", expected: [] },
  { name: "BUILDPLATFORM", dockerfile: "\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", expected: [] },
  {
    name: "misspelled BUILDPLATFORM",
    dockerfile: "\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n",
    expected: ["2 UndefinedArgInFrom: FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)"],
  },
  {
    name: "misspelled ARG in platform",
    dockerfile: "\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\nCOPY Dockerfile .\n\t",
    expected: ["4 UndefinedArgInFrom: FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)"],
  },
  {
    name: "undeclared ARG in image",
    dockerfile: "\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n",
    expected: ["3 UndefinedArgInFrom: FROM argument 'version' is not declared"],
  },
  {
    name: "WorkdirRelativePath",
    dockerfile: "\nFROM scratch\nWORKDIR app/\n",
    expected: ['3 WorkdirRelativePath: Relative workdir "app/" can have unexpected results if the base image changes'],
  },
  { name: "WORKDIR inherited", dockerfile: "\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n", expected: [] },
  { name: "declared ARG without value", dockerfile: "\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n", expected: [] },
  { name: "ARG from base stage", dockerfile: "\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n", expected: [] },
  { name: "RUN with $PATH", dockerfile: "\nFROM alpine\nRUN echo $PATH\n", expected: [] },
  {
    name: "variable used before its ARG",
    dockerfile: "\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n",
    expected: ["3 UndefinedVar: Usage of undefined variable '$foo'"],
  },
  {
    name: "near miss of an ARG",
    dockerfile: "\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n\t",
    expected: ["6 UndefinedVar: Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)"],
  },
  {
    name: "near miss of PATH",
    dockerfile: "\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n\t\t",
    expected: ["3 UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?)"],
  },
  {
    name: "MultipleInstructionsDisallowed",
    dockerfile:
      '\nFROM scratch\nENTRYPOINT ["/myapp"]\nENTRYPOINT ["/myotherapp"]\nCMD ["/myapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
    expected: [
      "3 MultipleInstructionsDisallowed: Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used",
      "5 MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used",
      "7 MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used",
    ],
  },
  {
    name: "MultipleInstructionsDisallowed across other instructions",
    dockerfile:
      '\nFROM scratch\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\nCOPY <<EOF /a.txt\nHello, World!\nEOF\nENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
    expected: [
      "3 MultipleInstructionsDisallowed: Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used",
      "4 MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used",
      "5 MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used",
    ],
  },
  {
    name: "one each per stage",
    dockerfile:
      '\nFROM scratch AS a\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\n\nFROM a AS b\nENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
    expected: [],
  },
  {
    name: "LegacyKeyValueFormat",
    dockerfile: "\nFROM scratch\nENV testkey value\nLABEL key value\n",
    expected: [
      '3 LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format',
      '4 LegacyKeyValueFormat: "LABEL key=value" should be used instead of legacy "LABEL key value" format',
    ],
  },
  { name: "key=value", dockerfile: "\nFROM scratch\nENV testkey=value\nLABEL key=value\n", expected: [] },
  {
    name: "LegacyKeyValueFormat in an unreachable stage",
    dockerfile: "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n",
    expected: [
      '5 LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format',
      '6 LegacyKeyValueFormat: "LABEL key=value" should be used instead of legacy "LABEL key value" format',
    ],
  },
  {
    name: "RedundantTargetPlatform",
    dockerfile: "\nFROM --platform=$TARGETPLATFORM scratch\n",
    expected: ["2 RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"],
  },
  {
    name: "RedundantTargetPlatform braces",
    dockerfile: "\nFROM --platform=${TARGETPLATFORM} scratch\n",
    expected: ["2 RedundantTargetPlatform: Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior"],
  },
  {
    name: "InvalidDefaultArgInFrom without default",
    dockerfile: "\nARG VERSION\nFROM busybox:$VERSION\n",
    options: { buildArgs: { VERSION: "latest" } },
    expected: ["3 InvalidDefaultArgInFrom: Default value for ARG busybox:$VERSION results in empty or invalid base image name"],
  },
  {
    name: "InvalidDefaultArgInFrom empty",
    dockerfile: "\nARG IMAGE\nFROM $IMAGE\n",
    options: { buildArgs: { IMAGE: "busybox:latest" } },
    expected: ["3 InvalidDefaultArgInFrom: Default value for ARG $IMAGE results in empty or invalid base image name"],
  },
  {
    name: "InvalidDefaultArgInFrom dangling colon",
    dockerfile: '\nARG SFX="box:"\nFROM busy${SFX}\n',
    options: { buildArgs: { SFX: "box:latest" } },
    expected: ["3 InvalidDefaultArgInFrom: Default value for ARG busy${SFX} results in empty or invalid base image name"],
  },
  { name: "valid default", dockerfile: '\nARG VERSION="latest"\nFROM busybox:${VERSION}\n', options: { buildArgs: { VERSION: "latest" } }, expected: [] },
  {
    name: "empty default suffix",
    dockerfile: '\nARG BUSYBOX_VARIANT=""\nFROM busybox:stable${BUSYBOX_VARIANT}\n',
    options: { buildArgs: { BUSYBOX_VARIANT: "-musl" } },
    expected: [],
  },
  {
    name: "no default suffix",
    dockerfile: "\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t",
    options: { buildArgs: { BUSYBOX_VARIANT: "-musl" } },
    expected: [],
  },
  {
    name: "FromPlatformFlagConstDisallowed",
    dockerfile: "\nFROM --platform=linux/amd64 scratch\n",
    expected: ['2 FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value "linux/amd64"'],
  },
  { name: "platform in stage name", dockerfile: "\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n", expected: [] },
  { name: "OS as stage name", dockerfile: "\nFROM --platform=linux/amd64 scratch AS linux\n", expected: [] },
];

/** kiln's own rules are not part of BuildKit's expectations. */
const KILN_RULES = new Set(["CopyAllBeforeDependencyInstall", "PackageCacheInSeparateLayer", "AptGetUpdateAlone", "AddInsteadOfCopy"]);

describe("BuildKit's lint integration cases", () => {
  for (const c of CASES) {
    it(c.name, () => {
      const { findings } = checkDockerfile(c.dockerfile, { file: "Dockerfile", ...c.options });
      const got = findings
        .filter((f) => !KILN_RULES.has(f.rule))
        .map((f) => ({ line: f.range.startLine, text: `${f.rule}: ${f.message}` }))
        .sort((a, b) => a.line - b.line || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
        .map((f) => `${f.line} ${f.text}`);
      expect(got).toEqual(c.expected);
    });
  }
});
