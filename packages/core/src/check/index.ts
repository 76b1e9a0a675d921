// `kiln build --check`: BuildKit's build checks plus kiln's cache and size advice, run on a
// Dockerfile without building it.
import { DockerfileError } from "../dockerfile/errors.js";
import { parseDockerfileModel } from "../dockerfile/stages.js";
import { CheckOptionsError, DEFAULT_CHECK_CONFIG, parseCheckOptions, type CheckConfig } from "./config.js";
import { buildContext } from "./context.js";
import { FindingCollector, type Finding } from "./finding.js";
import { checkCacheRules } from "./rules-cache.js";
import { checkDispatch } from "./rules-dispatch.js";
import {
  checkDefinitionDescriptions,
  checkDeprecatedForms,
  checkEmptyContinuations,
  checkFromSyntax,
  checkInstructionCasing,
} from "./rules-syntax.js";

export type { Finding } from "./finding.js";
export { formatFindings, type FormatOptions } from "./format.js";
export { CheckOptionsError, parseCheckOptions, type CheckConfig } from "./config.js";
export { RULES, RULE_NAMES, type RuleInfo, type RuleName } from "./rules.js";
export { splitShellCommands, commandsOfScript, type SimpleCommand } from "./shell-commands.js";

export interface CheckOptions {
  /** The Dockerfile's name for messages and errors. */
  file: string;
  /** `--build-arg` values; BUILDKIT_DOCKERFILE_CHECK overrides the file's `# check=` directive. */
  buildArgs?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /** The target stage (TARGETSTAGE); every stage is checked regardless. */
  target?: string;
  /** .dockerignore patterns (one per line as parseIgnoreFile returns them), for CopyIgnoredFile. */
  ignorePatterns?: readonly string[];
  /**
   * The config Env ("K=V") of an external base image, when known (e.g. from a local cache).
   * Without it, in stages built on external images UndefinedVar only reports names that cannot
   * be the image's: lowercase ones, near misses of the Dockerfile's own variables, a garbled PATH.
   */
  imageEnv?: (image: string) => readonly string[] | undefined;
}

export interface CheckResult {
  findings: Finding[];
}

function toMap(args: CheckOptions["buildArgs"]): Map<string, string> {
  if (args === undefined) return new Map();
  if (args instanceof Map) return new Map(args);
  return new Map(Object.entries(args as Record<string, string>));
}

/**
 * Checks a Dockerfile. Throws DockerfileError when it does not parse (as `docker build --check`
 * fails), including a malformed `# check=` directive.
 */
export function checkDockerfile(source: string, options: CheckOptions): CheckResult {
  const file = options.file;
  const model = parseDockerfileModel(source, { file });
  const buildArgs = toMap(options.buildArgs);
  let config: CheckConfig = DEFAULT_CHECK_CONFIG;
  const directive = buildArgs.get("BUILDKIT_DOCKERFILE_CHECK") ?? model.ast.directives.check;
  if (directive !== undefined) {
    try {
      config = parseCheckOptions(directive);
    } catch (err) {
      if (err instanceof CheckOptionsError) {
        throw new DockerfileError(file, undefined, `failed to parse check options: ${err.message}`);
      }
      throw err;
    }
  }
  const collector = new FindingCollector(config);
  const inputs: Parameters<typeof buildContext>[1] = { file, buildArgs };
  if (options.target !== undefined) inputs.target = options.target;
  if (options.ignorePatterns !== undefined) inputs.ignorePatterns = options.ignorePatterns;
  if (options.imageEnv !== undefined) inputs.imageEnv = options.imageEnv;
  const ctx = buildContext(model, inputs, collector);
  checkEmptyContinuations(ctx);
  checkFromSyntax(ctx);
  checkInstructionCasing(ctx);
  checkDeprecatedForms(ctx);
  checkDefinitionDescriptions(ctx);
  checkDispatch(ctx);
  checkCacheRules(ctx);
  return { findings: collector.findings() };
}
