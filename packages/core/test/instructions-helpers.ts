// Hand-built parser nodes for instruction-layer tests, shaped as parser.ts produces them.
import type { Heredoc, InstructionNode } from "../src/dockerfile/ast.js";

export interface NodeOptions {
  flags?: string[];
  json?: boolean;
  heredocs?: Heredoc[];
  original?: string;
  line?: number;
  child?: InstructionNode;
  comments?: string[];
}

export function node(keyword: string, args: string[], options: NodeOptions = {}): InstructionNode {
  const line = options.line ?? 1;
  const flags = options.flags ?? [];
  const original =
    options.original ?? [keyword.toUpperCase(), ...flags, ...(options.json ? [JSON.stringify(args)] : args)].join(" ");
  const n: InstructionNode = {
    keyword: keyword.toLowerCase(),
    flags,
    args,
    json: options.json ?? false,
    original,
    heredocs: options.heredocs ?? [],
    comments: options.comments ?? [],
    range: { startLine: line, endLine: line },
  };
  if (options.child) n.child = options.child;
  return n;
}

export function heredoc(name: string, content: string, extra: Partial<Heredoc> = {}): Heredoc {
  return { name, content, expand: true, chomp: false, ...extra };
}
