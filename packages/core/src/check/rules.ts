// The rules `kiln build --check` knows: BuildKit's build checks (same names, descriptions and
// documentation links as frontend/dockerfile/linter) followed by kiln's own cache and size advice.

export interface RuleInfo {
  name: string;
  description: string;
  url?: string;
  /** Experimental rules run only when enabled with `# check=experimental=...`, as in BuildKit. */
  experimental?: boolean;
}

const docs = (slug: string): string => `https://docs.docker.com/go/dockerfile/rule/${slug}/`;

function rule(name: string, description: string, url?: string, experimental = false): RuleInfo {
  const info: RuleInfo = { name, description };
  if (url !== undefined) info.url = url;
  if (experimental) info.experimental = true;
  return info;
}

export const RULES = {
  StageNameCasing: rule("StageNameCasing", "Stage names should be lowercase", docs("stage-name-casing")),
  FromAsCasing: rule("FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword", docs("from-as-casing")),
  NoEmptyContinuation: rule(
    "NoEmptyContinuation",
    "Empty continuation lines will become errors in a future release",
    docs("no-empty-continuation"),
  ),
  ConsistentInstructionCasing: rule(
    "ConsistentInstructionCasing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)",
    docs("consistent-instruction-casing"),
  ),
  DuplicateStageName: rule("DuplicateStageName", "Stage names should be unique", docs("duplicate-stage-name")),
  ReservedStageName: rule("ReservedStageName", "Reserved words should not be used as stage names", docs("reserved-stage-name")),
  JSONArgsRecommended: rule(
    "JSONArgsRecommended",
    "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
    docs("json-args-recommended"),
  ),
  MaintainerDeprecated: rule(
    "MaintainerDeprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
    docs("maintainer-deprecated"),
  ),
  UndefinedArgInFrom: rule("UndefinedArgInFrom", "FROM command must use declared ARGs", docs("undefined-arg-in-from")),
  WorkdirRelativePath: rule(
    "WorkdirRelativePath",
    "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
    docs("workdir-relative-path"),
  ),
  UndefinedVar: rule("UndefinedVar", "Variables should be defined before their use", docs("undefined-var")),
  MultipleInstructionsDisallowed: rule(
    "MultipleInstructionsDisallowed",
    "Multiple instructions of the same type should not be used in the same stage",
    docs("multiple-instructions-disallowed"),
  ),
  LegacyKeyValueFormat: rule(
    "LegacyKeyValueFormat",
    "Legacy key/value format with whitespace separator should not be used",
    docs("legacy-key-value-format"),
  ),
  RedundantTargetPlatform: rule(
    "RedundantTargetPlatform",
    "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
    docs("redundant-target-platform"),
  ),
  SecretsUsedInArgOrEnv: rule(
    "SecretsUsedInArgOrEnv",
    "Sensitive data should not be used in the ARG or ENV commands",
    docs("secrets-used-in-arg-or-env"),
  ),
  InvalidDefaultArgInFrom: rule(
    "InvalidDefaultArgInFrom",
    "Default value for global ARG results in an empty or invalid base image name",
    docs("invalid-default-arg-in-from"),
  ),
  FromPlatformFlagConstDisallowed: rule(
    "FromPlatformFlagConstDisallowed",
    "FROM --platform flag should not use a constant value",
    docs("from-platform-flag-const-disallowed"),
  ),
  CopyIgnoredFile: rule("CopyIgnoredFile", "Attempting to Copy file that is excluded by .dockerignore", docs("copy-ignored-file")),
  InvalidDefinitionDescription: rule(
    "InvalidDefinitionDescription",
    "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
    docs("invalid-definition-description"),
    true,
  ),
  ExposeProtoCasing: rule("ExposeProtoCasing", "Protocol in EXPOSE instruction should be lowercase", docs("expose-proto-casing")),
  ExposeInvalidFormat: rule(
    "ExposeInvalidFormat",
    "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
    docs("expose-invalid-format"),
  ),
  // kiln's own rules.
  CopyAllBeforeDependencyInstall: rule(
    "CopyAllBeforeDependencyInstall",
    "Copying the whole build context before installing dependencies makes every source edit re-run the install",
  ),
  PackageCacheInSeparateLayer: rule(
    "PackageCacheInSeparateLayer",
    "Cleaning package caches in a later RUN does not shrink the image: the earlier layer still ships the files",
  ),
  AptGetUpdateAlone: rule(
    "AptGetUpdateAlone",
    "apt-get update in its own RUN is cached on its own and later installs use a stale package index",
  ),
  AddInsteadOfCopy: rule("AddInsteadOfCopy", "Use COPY for local files and directories; ADD is for archives and URLs"),
} as const satisfies Record<string, RuleInfo>;

export type RuleName = keyof typeof RULES;

export const RULE_NAMES: readonly RuleName[] = Object.keys(RULES) as RuleName[];
