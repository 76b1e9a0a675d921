// Dockerfile text -> syntax tree, with BuildKit's frontend/dockerfile/parser as the reference:
// same line joining, comment and directive handling, per-instruction argument forms, heredocs
// and errors. Nothing is expanded or validated beyond what that parser does.

import type { DockerfileAst, Heredoc, InstructionNode, ParseWarning } from "./ast.js";
import { DockerfileError } from "./errors.js";
import { parseArgs } from "./parser-args.js";
import { DirectiveScanner, checkEscapeToken } from "./parser-directives.js";
import { heredocMarkersInLine } from "./parser-heredoc.js";
import { LINE_TOO_LONG, LineScanner, trimNewline } from "./parser-lines.js";
import { LineParseError, goToLower, goTrimLeft, goTrimSpace } from "./parser-text.js";
import { splitCommand } from "./parser-words.js";

export interface ParseOptions {
  /** Name used in error messages and in the result; defaults to "Dockerfile". */
  file?: string;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const HEREDOC_KEYWORDS: ReadonlySet<string> = new Set(["run", "copy", "add"]);

function isComment(line: string): boolean {
  return goTrimLeft(line).startsWith("#");
}

/**
 * BuildKit drops the first byte of the raw line (not of the trimmed one) before trimming, so an
 * indented comment keeps its '#'. A multi-byte first character leaves a broken byte behind, shown
 * here as U+FFFD.
 */
function commentText(line: string): string {
  const first = line.codePointAt(0) ?? 0;
  if (first < 0x80) return goTrimSpace(line.slice(1));
  return goTrimSpace("\ufffd" + line.slice(first > 0xffff ? 2 : 1));
}

/**
 * Removes a trailing line-continuation escape token (followed only by spaces/tabs) unless it is
 * itself escaped. Returns the line and whether the logical line ends here.
 */
function trimContinuation(line: string, escapeToken: string): { text: string; end: boolean } {
  let end = line.length;
  while (end > 0) {
    const c = line.charCodeAt(end - 1);
    if (c !== 0x20 && c !== 0x09) break;
    end--;
  }
  const at = end - 1;
  if (at < 0 || line[at] !== escapeToken || (at > 0 && line[at - 1] === escapeToken)) {
    return { text: line, end: true };
  }
  return { text: line.slice(0, at), end: false };
}

function trimLeadingTabs(line: string): string {
  let i = 0;
  while (i < line.length && line.charCodeAt(i) === 0x09) i++;
  return i === 0 ? line : line.slice(i);
}

/** One logical line -> node; ONBUILD wraps its instruction (iteratively: nesting is unbounded). */
function buildNode(line: string, escapeToken: string): InstructionNode {
  const chain: InstructionNode[] = [];
  let text = line;
  for (;;) {
    const { keyword, flags, rest } = splitCommand(text, escapeToken);
    const node: InstructionNode = {
      keyword: goToLower(keyword),
      flags,
      args: [],
      json: false,
      original: text,
      heredocs: [],
      comments: [],
      range: { startLine: 0, endLine: 0 },
    };
    chain.push(node);
    if (node.keyword === "onbuild") {
      if (rest === "") break;
      text = rest;
      continue;
    }
    const parsed = parseArgs(node.keyword, rest, escapeToken);
    node.args = parsed.args;
    node.json = parsed.json;
    break;
  }
  for (let i = chain.length - 2; i >= 0; i--) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (parent && child) parent.child = child;
  }
  const top = chain[0];
  if (!top) throw new LineParseError("internal: empty instruction chain");
  return top;
}

function canContainHeredoc(node: InstructionNode): boolean {
  const target = node.keyword === "onbuild" && node.child ? node.child : node;
  return HEREDOC_KEYWORDS.has(target.keyword) && !target.json;
}

function setRange(node: InstructionNode, startLine: number, endLine: number): void {
  for (let n: InstructionNode | undefined = node; n; n = n.child) n.range = { startLine, endLine };
}

/**
 * Parses a Dockerfile. Throws DockerfileError (and nothing else) for text BuildKit's parser
 * rejects: no instructions, a repeated directive, a bad escape token, ENV/LABEL without a value,
 * a JSON array of non-strings, a malformed or unterminated heredoc, a line over 64 KiB.
 */
export function parseDockerfile(source: string, options: ParseOptions = {}): DockerfileAst {
  const file = options.file ?? "Dockerfile";
  // BuildKit reads UTF-8 bytes; a lone surrogate would be encoded as U+FFFD, so do the same.
  const scanner = new LineScanner(source.replace(LONE_SURROGATE, "\ufffd"));
  const directives = new DirectiveScanner();
  const nodes: InstructionNode[] = [];
  const warnings: ParseWarning[] = [];
  let escapeToken = "\\";
  let currentLine = 0;
  let comments: string[] = [];

  const located = (err: unknown, startLine: number, endLine = startLine): unknown =>
    err instanceof LineParseError ? new DockerfileError(file, { startLine, endLine }, err.message) : err;

  /** Newline removed, directive recorded, comment lines emptied. */
  const processLine = (raw: string, stripLeft: boolean): { text: string; directive: boolean } => {
    let token = trimNewline(raw);
    if (stripLeft) token = goTrimLeft(token);
    let directive: ReturnType<DirectiveScanner["parseLine"]>;
    try {
      directive = directives.parseLine(token);
      if (directive?.name === "escape") escapeToken = checkEscapeToken(directive.value);
    } catch (err) {
      throw located(err, currentLine + 1);
    }
    return { text: isComment(token) ? "" : token, directive: directive !== undefined };
  };

  for (let raw = scanner.next(); raw !== undefined; raw = scanner.next()) {
    if (currentLine === 0 && raw.startsWith("\ufeff")) raw = raw.slice(1);
    if (isComment(raw)) {
      const comment = commentText(raw);
      if (comment === "") comments = [];
      else comments.push(comment);
    }
    const first = processLine(raw, true);
    if (first.directive) comments.pop();
    currentLine++;
    const startLine = currentLine;

    let part = trimContinuation(first.text, escapeToken);
    if (part.end && part.text === "") continue;
    const parts = [part.text];
    let hasEmptyContinuation = false;
    while (!part.end) {
      const next = scanner.next();
      if (next === undefined) break;
      const processed = processLine(next, false);
      currentLine++;
      if (isComment(next)) continue;
      if (goTrimLeft(processed.text) === "") {
        hasEmptyContinuation = true;
        continue;
      }
      part = trimContinuation(processed.text, escapeToken);
      parts.push(part.text);
    }
    const line = parts.join("");

    if (hasEmptyContinuation) {
      warnings.push({
        message: `Empty continuation line found in: ${line}`,
        range: { startLine: currentLine, endLine: currentLine },
      });
    }

    let node: InstructionNode;
    try {
      node = buildNode(line, escapeToken);
    } catch (err) {
      throw located(err, startLine, currentLine);
    }
    node.comments = comments;

    if (canContainHeredoc(node) && line.includes("<<")) {
      let markers: Array<Omit<Heredoc, "content">>;
      try {
        markers = heredocMarkersInLine(line);
      } catch (err) {
        throw located(err, startLine, currentLine);
      }
      for (const marker of markers) {
        let content = "";
        let terminated = false;
        for (let body = scanner.next(); body !== undefined; body = scanner.next()) {
          currentLine++;
          let candidate = trimNewline(body);
          if (marker.chomp) candidate = trimLeadingTabs(candidate);
          if (candidate === marker.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) {
          throw new DockerfileError(file, { startLine, endLine: currentLine }, "unterminated heredoc");
        }
        node.heredocs.push({ ...marker, content });
      }
    }

    setRange(node, startLine, currentLine);
    nodes.push(node);
    comments = [];
  }

  if (nodes.length === 0) {
    const range = currentLine > 0 ? { startLine: currentLine, endLine: currentLine } : undefined;
    throw new DockerfileError(file, range, "file with no instructions");
  }
  if (scanner.tooLong) {
    throw new DockerfileError(file, { startLine: currentLine + 1, endLine: currentLine + 1 }, LINE_TOO_LONG);
  }

  return { file, directives: directives.values, escapeToken, nodes, warnings };
}
