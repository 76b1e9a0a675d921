// The syntax tree of a Dockerfile, as BuildKit's parser produces it (frontend/dockerfile/parser):
// one node per instruction, its raw flags, and its argument words. Nothing is expanded or typed
// here; `instructions.ts` turns nodes into typed instructions.

/** A 1-based line range in the source file; columns are 1-based and optional. */
export interface SourceRange {
  startLine: number;
  endLine: number;
  startColumn?: number;
  endColumn?: number;
}

export interface Heredoc {
  /** Delimiter word, without quotes or the `<<`/`<<-` prefix. */
  name: string;
  /**
   * Body, lines joined with "\n", ending with "\n" when non-empty (BuildKit keeps the final newline).
   * Kept raw as BuildKit's parser keeps it: original line endings ("\r\n" stays) and, for `<<-`,
   * leading tabs still present (BuildKit strips them when it builds the instruction).
   */
  content: string;
  /** False when the delimiter was quoted: the body is not word-expanded. */
  expand: boolean;
  /** True for `<<-`: leading tabs are to be stripped from body lines (not yet done in `content`). */
  chomp: boolean;
  /** File descriptor prefix such as `3<<EOF`, if any. */
  fileDescriptor?: number;
}

export interface InstructionNode {
  /** Lower-cased keyword, e.g. "from", "run". */
  keyword: string;
  /** Raw flags as written, e.g. ["--from=builder", "--chmod=644"]. */
  flags: string[];
  /** Argument words after the keyword and flags (BuildKit's Next chain). */
  args: string[];
  /** True when the arguments were given in JSON (exec) form. */
  json: boolean;
  /** The instruction text with continuations joined, as BuildKit's `Original`. */
  original: string;
  /** For ONBUILD: the wrapped instruction. */
  child?: InstructionNode;
  heredocs: Heredoc[];
  /** Comment lines immediately before the instruction (without the leading '#'). */
  comments: string[];
  range: SourceRange;
}

export interface ParserDirectives {
  syntax?: string;
  escape?: string;
  check?: string;
}

export interface ParseWarning {
  message: string;
  range: SourceRange;
}

export interface DockerfileAst {
  file: string;
  directives: ParserDirectives;
  /** The escape token in effect: "\\" or "`". */
  escapeToken: string;
  nodes: InstructionNode[];
  warnings: ParseWarning[];
}
