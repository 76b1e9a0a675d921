// Instruction flags (`--from=x`, `--link`, `--mount=...`), parsed the way BuildKit's BFlags does:
// each instruction declares its flags and their types; anything else is rejected.
import { InstructionError } from "./instruction-error.js";
import { withSuggestion } from "./suggest.js";

export type FlagType = "string" | "bool" | "strings";

/** Flag name (without dashes) → type, in the order suggestions should prefer. */
export type FlagSpec = Readonly<Record<string, FlagType>>;

export interface ParsedFlags {
  /** Values of string flags that were given. */
  strings: Map<string, string>;
  /** Values of bool flags that were given (absent ones are false unless a default applies). */
  bools: Map<string, boolean>;
  /** Every value of repeatable flags, in order. */
  lists: Map<string, string[]>;
  /** Names of the flags that were given, in first-use order. */
  used: string[];
}

/**
 * Parses raw flags against `spec`. Like BuildKit: a bare `--` stops flag processing, every other
 * word must start with `--`, bool flags take no value or true/false (any case), string flags need
 * `=value` (possibly empty), and only repeatable flags may appear twice.
 */
export function parseFlags(raw: readonly string[], spec: FlagSpec): ParsedFlags {
  const parsed: ParsedFlags = { strings: new Map(), bools: new Map(), lists: new Map(), used: [] };
  for (const arg of raw) {
    if (arg === "--") break;
    if (!arg.startsWith("--")) throw new InstructionError(`arg should start with -- : ${arg}`);
    const eq = arg.indexOf("=");
    const flagName = eq === -1 ? arg : arg.slice(0, eq);
    const hasValue = eq !== -1;
    const value = hasValue ? arg.slice(eq + 1) : "";
    const name = flagName.slice(2);
    const type = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (type === undefined) {
      throw new InstructionError(withSuggestion(`unknown flag: ${flagName}`, name, Object.keys(spec), true));
    }
    if (parsed.used.includes(name)) {
      if (type !== "strings") throw new InstructionError(`duplicate flag specified: ${flagName}`);
    } else {
      parsed.used.push(name);
    }
    switch (type) {
      case "bool": {
        if (hasValue && value === "") throw new InstructionError(`missing a value on flag: ${flagName}`);
        const lower = value.toLowerCase();
        if (lower === "true" || lower === "") parsed.bools.set(name, true);
        else if (lower === "false") parsed.bools.set(name, false);
        else throw new InstructionError(`expecting boolean value for flag ${flagName}, not: ${value}`);
        break;
      }
      case "string":
        if (!hasValue) throw new InstructionError(`missing a value on flag: ${flagName}`);
        parsed.strings.set(name, value);
        break;
      case "strings": {
        if (!hasValue) throw new InstructionError(`missing a value on flag: ${flagName}`);
        const list = parsed.lists.get(name) ?? [];
        list.push(value);
        parsed.lists.set(name, list);
        break;
      }
    }
  }
  return parsed;
}
