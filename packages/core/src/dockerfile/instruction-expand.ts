// Word expansion of a typed instruction at dispatch time, limited to the fields BuildKit expands
// (the Expand/ExpandRaw methods of frontend/dockerfile/instructions plus dispatchExpose,
// dispatchArg and the stage FROM handling in dockerfile2llb/convert.go). RUN/CMD/ENTRYPOINT/SHELL
// command lines, HEALTHCHECK, MAINTAINER and ONBUILD are never expanded; RUN only has its
// `--mount` values expanded.
import { DockerfileError } from "./errors.js";
import { InstructionError } from "./instruction-error.js";
import { parseRunMount } from "./instruction-mounts.js";
import type { Instruction, KeyValuePair, SourceContent } from "./instructions.js";
import { envLookup, expandWord, expandWords, ShellExpansionError, type EnvLookup, type EscapeToken } from "./shell-lexer.js";

export interface ExpandedInstruction<T extends Instruction = Instruction> {
  /** A copy of the instruction with its expandable fields expanded. */
  instruction: T;
  /**
   * Variables the expansion found set, in first-use order (ARGs and ENVs alike; StageEnv's
   * `buildArgsAmong` keeps the ARGs, which are what a cache key must include).
   */
  usedArgs: string[];
}

export interface ExpandInstructionOptions {
  /** File name for error messages; "Dockerfile" by default. */
  file?: string;
}

const NO_VARIABLES = envLookup([]);

class Expander {
  readonly used: string[] = [];
  constructor(
    private readonly env: EnvLookup,
    readonly escapeToken: EscapeToken,
  ) {}

  private note(matched: Iterable<string>): void {
    for (const name of matched) if (!this.used.includes(name)) this.used.push(name);
  }

  word = (word: string): string => {
    const r = expandWord(word, this.env, { escapeToken: this.escapeToken });
    this.note(r.matched);
    return r.result;
  };

  words = (word: string): string[] => {
    const r = expandWords(word, this.env, { escapeToken: this.escapeToken });
    this.note(r.matched);
    return r.words;
  };

  /** Heredoc bodies: BuildKit always uses `\` here and leaves quotes alone. */
  raw = (text: string): string => {
    const r = expandWord(text, this.env, { escapeToken: "\\", skipProcessQuotes: true });
    this.note(r.matched);
    return r.result;
  };

  optional = (word: string | undefined): string | undefined => (word === undefined ? undefined : this.word(word));

  pairs = (pairs: readonly KeyValuePair[]): KeyValuePair[] =>
    pairs.map((p) => ({ key: this.word(p.key), value: this.word(p.value), noDelim: p.noDelim }));

  contents = (contents: readonly SourceContent[]): SourceContent[] =>
    contents.map((c) => (c.expand ? { ...c, data: this.raw(c.data) } : { ...c }));
}

function assign<T extends object>(target: T, key: keyof T, value: T[keyof T] | undefined): void {
  if (value === undefined) delete target[key];
  else target[key] = value;
}

/**
 * Expands `instr` against `env` as BuildKit does when dispatching it. For FROM, pass the global
 * ARG scope (GlobalArgScope.lookup()); for everything else, the stage's (StageEnv.lookup()).
 * Throws DockerfileError on malformed substitutions and on BuildKit's dispatch-time checks
 * (blank base name, `COPY --from` with variables, bad mount values).
 */
export function expandInstruction<T extends Instruction>(
  instr: T,
  env: EnvLookup,
  escapeToken: EscapeToken = "\\",
  options: ExpandInstructionOptions = {},
): ExpandedInstruction<T> {
  const x = new Expander(env, escapeToken);
  try {
    const instruction = expandFields(instr, x) as T;
    return { instruction, usedArgs: x.used };
  } catch (err) {
    if (err instanceof InstructionError || err instanceof ShellExpansionError) {
      throw new DockerfileError(options.file ?? "Dockerfile", instr.range, err.message);
    }
    throw err;
  }
}

function expandFields(instr: Instruction, x: Expander): Instruction {
  switch (instr.kind) {
    case "from": {
      const image = x.word(instr.image);
      if (image === "") throw new InstructionError(`base name (${instr.image}) should not be blank`);
      const out = { ...instr, image };
      if (instr.platform !== undefined) {
        const platform = x.word(instr.platform);
        if (platform === "") throw new InstructionError(`empty platform value from expression ${instr.platform}`);
        out.platform = platform;
      }
      return out;
    }
    case "env":
      return { ...instr, env: x.pairs(instr.env) };
    case "label":
      return { ...instr, labels: x.pairs(instr.labels) };
    case "copy": {
      if (instr.from !== undefined) {
        // BuildKit refuses variables here outright: --from must name a stage known before dispatch.
        const literal = expandWord(instr.from, NO_VARIABLES, { escapeToken: x.escapeToken }).result;
        if (literal !== instr.from) {
          throw new InstructionError(
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
          );
        }
      }
      const out = { ...instr, excludes: [...instr.excludes] };
      assign(out, "chown", x.optional(instr.chown));
      assign(out, "chmod", x.optional(instr.chmod));
      out.sources = instr.sources.map(x.word);
      out.dest = x.word(instr.dest);
      out.contents = x.contents(instr.contents);
      return out;
    }
    case "add": {
      const out = { ...instr, excludes: [...instr.excludes] };
      assign(out, "chown", x.optional(instr.chown));
      assign(out, "chmod", x.optional(instr.chmod));
      assign(out, "checksum", x.optional(instr.checksum));
      out.sources = instr.sources.map(x.word);
      out.dest = x.word(instr.dest);
      out.contents = x.contents(instr.contents);
      return out;
    }
    case "expose":
      return { ...instr, ports: instr.ports.flatMap(x.words) };
    case "user":
      return { ...instr, user: x.word(instr.user) };
    case "workdir":
      return { ...instr, path: x.word(instr.path) };
    case "volume":
      return { ...instr, volumes: instr.volumes.map(x.word) };
    case "stopsignal":
      return { ...instr, signal: x.word(instr.signal) };
    case "arg":
      // Keys are never expanded; defaults are (dispatchArg), unless a build arg replaces them,
      // which StageEnv.declareArg handles.
      return {
        ...instr,
        args: instr.args.map((a) => (a.value === undefined ? { ...a } : { key: a.key, value: x.word(a.value) })),
      };
    case "run":
      return { ...instr, mounts: instr.mountSpecs.map((spec) => parseRunMount(spec, x.word)) };
    case "cmd":
    case "entrypoint":
    case "shell":
    case "healthcheck":
    case "maintainer":
    case "onbuild":
      return { ...instr };
  }
}
