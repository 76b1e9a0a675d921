// `# check=` options (BuildKit's linter.ParseLintOptions): `skip=Rule1,Rule2` or `skip=all`,
// `error=true` (findings fail the build), `experimental=Rule|all`, separated by `;`. The file's
// directive sets the base; a `# check=` comment right above an instruction adds skips and
// experimental rules for that instruction only.

export class CheckOptionsError extends Error {
  override readonly name = "CheckOptionsError";
}

export interface CheckConfig {
  skipAll: boolean;
  skip: ReadonlySet<string>;
  experimentalAll: boolean;
  experimental: ReadonlySet<string>;
  /** Findings are errors (the check fails) rather than warnings. */
  error: boolean;
}

export const DEFAULT_CHECK_CONFIG: CheckConfig = {
  skipAll: false,
  skip: new Set(),
  experimentalAll: false,
  experimental: new Set(),
  error: false,
};

/** Go's strconv.ParseBool. */
function parseBool(text: string): boolean | undefined {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(text)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(text)) return false;
  return undefined;
}

function ruleList(value: string): { all: boolean; names: Set<string> } {
  const v = value.trim();
  if (v === "all") return { all: true, names: new Set() };
  return { all: false, names: new Set(v.split(",").map((s) => s.trim())) };
}

/** Parses the value of a `check` directive. Throws CheckOptionsError like BuildKit refuses it. */
export function parseCheckOptions(text: string): CheckConfig {
  const trimmed = text.trim();
  if (trimmed === "") return { ...DEFAULT_CHECK_CONFIG };
  const config: CheckConfig = { ...DEFAULT_CHECK_CONFIG };
  // Go's SplitN(s, ";", 3): a third part keeps any further ';'.
  const pieces = trimmed.split(";");
  const parts = pieces.length > 3 ? [...pieces.slice(0, 2), pieces.slice(2).join(";")] : pieces;
  for (const part of parts) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new CheckOptionsError(`invalid check option ${JSON.stringify(part)}`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1);
    switch (key) {
      case "skip": {
        const { all, names } = ruleList(value);
        config.skipAll = all;
        config.skip = names;
        break;
      }
      case "experimental": {
        const { all, names } = ruleList(value);
        config.experimentalAll = all;
        config.experimental = names;
        break;
      }
      case "error": {
        const b = parseBool(value.trim());
        if (b === undefined) {
          throw new CheckOptionsError(
            `failed to parse check option ${JSON.stringify(part)}: strconv.ParseBool: parsing ${JSON.stringify(value.trim())}: invalid syntax`,
          );
        }
        config.error = b;
        break;
      }
      default:
        throw new CheckOptionsError(`invalid check option ${JSON.stringify(key)}`);
    }
  }
  return config;
}

/** `base` with the skips and experimental rules of `extra` added (error mode is never changed). */
export function mergeCheckConfig(base: CheckConfig, extra: CheckConfig): CheckConfig {
  return {
    skipAll: base.skipAll || extra.skipAll,
    skip: new Set([...base.skip, ...extra.skip]),
    experimentalAll: base.experimentalAll || extra.experimentalAll,
    experimental: new Set([...base.experimental, ...extra.experimental]),
    error: base.error,
  };
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

/**
 * The config for one instruction: the first `check=...` among the comments right above it is
 * merged in; an unparsable one is ignored (BuildKit keeps the file's config then).
 */
export function configForComments(base: CheckConfig, comments: readonly string[]): CheckConfig {
  for (const comment of comments) {
    const m = DIRECTIVE.exec(comment);
    if (!m || m[1]?.toLowerCase() !== "check") continue;
    const value = (m[2] ?? "").split(" ")[0] ?? "";
    try {
      return mergeCheckConfig(base, parseCheckOptions(value));
    } catch (err) {
      if (err instanceof CheckOptionsError) return base;
      throw err;
    }
  }
  return base;
}
