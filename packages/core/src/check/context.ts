// The Dockerfile as the rules see it: every parser node paired with its typed instruction (to
// know the keyword as written), grouped by stage, with each stage's base resolved to an earlier
// stage, scratch, or an external image.
import type { InstructionNode } from "../dockerfile/ast.js";
import type { ArgInstruction, FromInstruction, Instruction, StageInstruction } from "../dockerfile/instructions.js";
import type { DockerfileModel, Stage } from "../dockerfile/stages.js";
import type { EscapeToken } from "../dockerfile/shell-lexer.js";
import { FindingCollector } from "./finding.js";

export interface Entry<T extends Instruction = Instruction> {
  node: InstructionNode;
  instr: T;
  /** The keyword as written in the file, e.g. "From", "RUN". */
  keyword: string;
}

export interface StageView {
  stage: Stage;
  from: Entry<FromInstruction>;
  entries: Entry<StageInstruction>[];
}

export interface CheckInputs {
  file: string;
  buildArgs: ReadonlyMap<string, string>;
  target?: string;
  ignorePatterns?: readonly string[];
  imageEnv?: (image: string) => readonly string[] | undefined;
}

export interface CheckContext extends CheckInputs {
  model: DockerfileModel;
  escapeToken: EscapeToken;
  metaArgs: Entry<ArgInstruction>[];
  stages: StageView[];
  collector: FindingCollector;
}

function writtenKeyword(node: InstructionNode): string {
  const word = /^\s*(\S+)/.exec(node.original)?.[1];
  return word !== undefined && word.toLowerCase() === node.keyword ? word : node.keyword;
}

/** Pairs nodes with instructions: the model keeps the nodes' order (meta ARGs, then stages). */
export function buildContext(model: DockerfileModel, inputs: CheckInputs, collector: FindingCollector): CheckContext {
  const instructions: Instruction[] = [
    ...model.globalArgs,
    ...model.stages.flatMap((s): Instruction[] => [s.from, ...s.instructions]),
  ];
  const nodes = model.ast.nodes;
  if (nodes.length !== instructions.length) throw new Error("internal: model and syntax tree disagree");
  const entries = instructions.map((instr, i): Entry => {
    const node = nodes[i] as InstructionNode;
    return { node, instr, keyword: writtenKeyword(node) };
  });
  let at = 0;
  const metaArgs = model.globalArgs.map(() => entries[at++] as Entry<ArgInstruction>);
  const stages = model.stages.map((stage): StageView => {
    const from = entries[at++] as Entry<FromInstruction>;
    const own = stage.instructions.map(() => entries[at++] as Entry<StageInstruction>);
    return { stage, from, entries: own };
  });
  return { ...inputs, model, escapeToken: model.escapeToken, metaArgs, stages, collector };
}
