// Groups typed instructions into build stages (BuildKit's instructions.Parse): ARGs before the
// first FROM are the global (meta) ARGs, every FROM opens a stage, and any other instruction
// before the first FROM is an error.
import type { DockerfileAst, ParseWarning, SourceRange } from "./ast.js";
import { DockerfileError } from "./errors.js";
import {
  parseInstruction,
  type ArgInstruction,
  type FromInstruction,
  type ParseInstructionOptions,
  type StageInstruction,
} from "./instructions.js";
import { parseDockerfile } from "./parser.js";
import type { EscapeToken } from "./shell-lexer.js";

export interface Stage {
  /** Lower-cased `AS` name, if any. */
  name?: string;
  /** Position among the stages, from 0 (usable as `COPY --from=0`). */
  index: number;
  from: FromInstruction;
  instructions: StageInstruction[];
  /** From the FROM line to the end of the stage's last instruction. */
  range: SourceRange;
}

export interface ParsedStages {
  globalArgs: ArgInstruction[];
  stages: Stage[];
  /** BuildKit lint findings (duplicate or reserved stage names, MAINTAINER, legacy ENV/LABEL form). */
  warnings: ParseWarning[];
}

export type ParseStagesOptions = ParseInstructionOptions;

const RESERVED_STAGE_NAMES = new Set(["context", "scratch"]);

/** Parses every node of `ast` and groups the instructions into stages. */
export function parseStages(ast: DockerfileAst, options: ParseStagesOptions = {}): ParsedStages {
  const file = options.file ?? (ast.file || "Dockerfile");
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const warnings: ParseWarning[] = [];
  const names = new Set<string>();
  for (const node of ast.nodes) {
    const instr = parseInstruction(node, { file });
    if (instr.kind === "maintainer") {
      warnings.push({ message: "Maintainer instruction is deprecated in favor of using label", range: instr.range });
    }
    if ((instr.kind === "env" && instr.env.some((p) => p.noDelim)) || (instr.kind === "label" && instr.labels.some((p) => p.noDelim))) {
      const name = instr.kind.toUpperCase();
      warnings.push({
        message: `"${name} key=value" should be used instead of legacy "${name} key value" format`,
        range: instr.range,
      });
    }
    if (instr.kind === "from") {
      if (instr.stageName !== undefined) {
        if (RESERVED_STAGE_NAMES.has(instr.stageName)) {
          warnings.push({
            message: `Stage name should not use the same name as reserved stage ${JSON.stringify(instr.stageName)}`,
            range: instr.range,
          });
        }
        if (names.has(instr.stageName)) {
          warnings.push({
            message: `Duplicate stage name ${JSON.stringify(instr.stageName)}, stage names should be unique`,
            range: instr.range,
          });
        }
        names.add(instr.stageName);
      }
      const stage: Stage = { index: stages.length, from: instr, instructions: [], range: { ...instr.range } };
      if (instr.stageName !== undefined) stage.name = instr.stageName;
      stages.push(stage);
      continue;
    }
    const current = stages[stages.length - 1];
    if (current === undefined) {
      if (instr.kind === "arg") {
        globalArgs.push(instr);
        continue;
      }
      throw new DockerfileError(file, instr.range, "no build stage in current context");
    }
    current.instructions.push(instr);
    current.range.endLine = instr.range.endLine;
    if (instr.range.endColumn !== undefined) current.range.endColumn = instr.range.endColumn;
    else delete current.range.endColumn;
  }
  return { globalArgs, stages, warnings };
}

/** Finds a stage as `COPY --from` / `FROM` / `--mount from=` refer to it: by name (any case) or index. */
export function findStage(stages: readonly Stage[], ref: string): Stage | undefined {
  const lower = ref.toLowerCase();
  const named = stages.find((s) => s.name === lower);
  if (named) return named;
  if (/^[0-9]+$/.test(ref)) return stages[Number.parseInt(ref, 10)];
  return undefined;
}

/** What the build engine reads: the typed Dockerfile. */
export interface DockerfileModel {
  ast: DockerfileAst;
  globalArgs: ArgInstruction[];
  stages: Stage[];
  escapeToken: EscapeToken;
  /** Parser warnings followed by instruction-level lint findings. */
  warnings: ParseWarning[];
}

/** Builds the typed model from a parsed AST. Throws when the Dockerfile has no stage to build. */
export function modelFromAst(ast: DockerfileAst, options: ParseStagesOptions = {}): DockerfileModel {
  const file = options.file ?? (ast.file || "Dockerfile");
  const { globalArgs, stages, warnings } = parseStages(ast, { file });
  if (stages.length === 0) throw new DockerfileError(file, undefined, "dockerfile contains no stages to build");
  const escapeToken: EscapeToken = ast.escapeToken === "`" ? "`" : "\\";
  return { ast, globalArgs, stages, escapeToken, warnings: [...ast.warnings, ...warnings] };
}

export interface ParseModelOptions {
  /** File name for the AST and error messages; "Dockerfile" by default. */
  file?: string;
}

/**
 * Dockerfile text → typed model: parses, types every instruction and groups stages. Throws
 * DockerfileError for anything BuildKit's parser or instruction layer rejects.
 */
export function parseDockerfileModel(source: string, options: ParseModelOptions = {}): DockerfileModel {
  const file = options.file ?? "Dockerfile";
  return modelFromAst(parseDockerfile(source, { file }), { file });
}
