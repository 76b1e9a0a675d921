// Unit tests for the Dockerfile parser. Expected values follow BuildKit's parser (they were
// cross-checked against BuildKit's Go parser built from source).

import { describe, expect, it } from "vitest";
import type { DockerfileAst, InstructionNode } from "../src/dockerfile/ast.js";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { parseDockerfile } from "../src/dockerfile/parser.js";
import { dumpAst, dumpNode } from "./support/ast-dump.js";

const dump = (source: string): string => dumpAst(parseDockerfile(source));
const nodes = (source: string): InstructionNode[] => parseDockerfile(source).nodes;
const node = (source: string, index = 0): InstructionNode => {
  const n = nodes(source)[index];
  if (!n) throw new Error(`no node ${index}`);
  return n;
};

function rejection(source: string, file?: string): DockerfileError {
  try {
    parseDockerfile(source, file === undefined ? undefined : { file });
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw new Error(`expected a DockerfileError, got ${String(err)}`);
  }
  throw new Error("expected the Dockerfile to be rejected");
}

describe("parser directives", () => {
  it("reads syntax, escape and check at the top, case-insensitively", () => {
    const ast = parseDockerfile("# syntax=docker/dockerfile:1\n#ESCAPE = `\n# Check=skip=all\nFROM x\n");
    expect(ast.directives).toEqual({ syntax: "docker/dockerfile:1", escape: "`", check: "skip=all" });
    expect(ast.escapeToken).toBe("`");
  });

  it("stops at a blank line, another comment or an instruction", () => {
    expect(parseDockerfile("\n# escape=`\nFROM x").escapeToken).toBe("\\");
    expect(parseDockerfile("# hello\n# escape=`\nFROM x").escapeToken).toBe("\\");
    expect(parseDockerfile("FROM x\n# escape=`\nRUN a").directives).toEqual({});
    // An unknown directive name also ends the directive block.
    expect(parseDockerfile("# foo=bar\n# escape=`\nFROM x").escapeToken).toBe("\\");
  });

  it("does not keep directives among the instruction's comments", () => {
    expect(node("# syntax=a\n# real comment\nFROM x").comments).toEqual(["real comment"]);
  });

  it("rejects a repeated directive and an invalid escape token, with the line", () => {
    const repeated = rejection("# syntax=a\n# check=b\n# SYNTAX=c\nFROM x");
    expect(repeated.message).toBe("Dockerfile:3: only one syntax parser directive can be used");
    const badEscape = rejection("# escape=x\nFROM x", "build/Dockerfile.dev");
    expect(badEscape.message).toBe("build/Dockerfile.dev:1: invalid escape token 'x' does not match ` or \\");
    expect(badEscape.file).toBe("build/Dockerfile.dev");
    expect(badEscape.line).toBe(1);
  });

  it("treats a byte order mark before the first directive as absent", () => {
    expect(parseDockerfile("\ufeff# escape=`\nFROM x\nRUN a `\n b").nodes[1]?.original).toBe("RUN a  b");
  });
});

describe("escape token", () => {
  it("uses backtick for continuations and leaves backslashes alone", () => {
    const ast = parseDockerfile("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\nENV a=c:\\x b=`\"q\n");
    expect(ast.nodes[1]?.args).toEqual(["dir c:\\   && echo hi"]);
    expect(ast.nodes[2]?.args).toEqual(["a", "c:\\x", "=", "b", "`\"q", "="]);
  });

  it("keeps an escaped escape token at the end of a line literal (no continuation)", () => {
    expect(dump("FROM x\nRUN a \\\\\nRUN b")).toBe('(from "x")\n(run "a \\\\\\\\")\n(run "b")');
  });
});

describe("continuations, comments and blank lines", () => {
  it("joins continued lines, keeping the indentation of continuation lines", () => {
    const n = node("RUN echo a \\\n    b \\\n\tc");
    expect(n.args).toEqual(["echo a     b \tc"]);
    expect(n.original).toBe("RUN echo a     b \tc");
    expect(n.range).toEqual({ startLine: 1, endLine: 3 });
  });

  it("skips comment lines and empty lines inside a continuation, warning about the empty ones", () => {
    const ast = parseDockerfile("FROM x\nRUN a \\\n# inside\n\n   \n  b\nCMD c\n");
    expect(ast.nodes[1]?.args).toEqual(["a   b"]);
    expect(ast.nodes[1]?.range).toEqual({ startLine: 2, endLine: 6 });
    expect(ast.warnings).toEqual([
      { message: "Empty continuation line found in: RUN a   b", range: { startLine: 6, endLine: 6 } },
    ]);
    expect(ast.nodes[2]?.range).toEqual({ startLine: 7, endLine: 7 });
  });

  it("accepts a continuation at the end of the file", () => {
    expect(dump("FROM alpine\nRUN something \\")).toBe('(from "alpine")\n(run "something")');
  });

  it("strips leading whitespace, lower-cases keywords and keeps the original text", () => {
    const n = node("   fRoM   alpine:3   AS   build  ");
    expect(n.keyword).toBe("from");
    expect(n.args).toEqual(["alpine:3", "AS", "build"]);
    expect(n.original).toBe("fRoM   alpine:3   AS   build  ");
  });

  it("handles CRLF line endings", () => {
    expect(dump("FROM x\r\nRUN a \\\r\n  b\r\n")).toBe('(from "x")\n(run "a   b")');
  });

  it("collects the comments just before an instruction; `#` alone resets them", () => {
    const ast = parseDockerfile("# one\n\n# two\nFROM x\n# three\n#\n# four\nRUN a\nRUN b");
    expect(ast.nodes.map((n) => n.comments)).toEqual([["one", "two"], ["four"], []]);
  });

  it("gives every instruction its line range", () => {
    const ast = parseDockerfile("\n\nFROM x\n\n# c\nRUN a \\\n  b \\\n  c\nCMD d\n");
    expect(ast.nodes.map((n) => n.range)).toEqual([
      { startLine: 3, endLine: 3 },
      { startLine: 6, endLine: 8 },
      { startLine: 9, endLine: 9 },
    ]);
  });

  it("accepts unknown keywords (with BuildKit's single empty argument)", () => {
    const n = node("FROM x\nFROBNICATE a b", 1);
    expect(n.keyword).toBe("frobnicate");
    expect(n.args).toEqual([""]);
    expect(n.original).toBe("FROBNICATE a b");
  });
});

describe("argument forms", () => {
  it("parses the JSON (exec) form and falls back to the string form when it is not JSON", () => {
    expect(node('CMD ["echo", "hi there"]')).toMatchObject({ args: ["echo", "hi there"], json: true });
    expect(node("CMD []")).toMatchObject({ args: [], json: true });
    expect(node("CMD ['echo', 'x']")).toMatchObject({ args: ["['echo', 'x']"], json: false });
    expect(node('CMD ["echo", "x"')).toMatchObject({ args: ['["echo", "x"'], json: false });
    expect(node('CMD "[\\"a\\"]"')).toMatchObject({ args: ['"[\\"a\\"]"'], json: false });
    expect(node('COPY ["a b", "/c"]')).toMatchObject({ args: ["a b", "/c"], json: true });
    expect(node('COPY [a b] /c')).toMatchObject({ args: ["[a", "b]", "/c"], json: false });
  });

  it("rejects a JSON array of non-strings", () => {
    expect(rejection('FROM x\nRUN ["a", 1]').message).toBe(
      "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only",
    );
    // A number Go cannot hold makes the JSON invalid instead: string form.
    expect(node('RUN ["a", 1e400]').args).toEqual(['["a", 1e400]']);
  });

  it("produces name/value/separator triples for ENV and LABEL", () => {
    expect(dump('ENV SCUBA 1 DUBA 3\nENV a=b c="d e"\nLABEL "x y"=z')).toBe(
      '(env "SCUBA" "1 DUBA 3" "")\n(env "a" "b" "=" "c" "\\"d e\\"" "=")\n(label "\\"x y\\"" "z" "=")',
    );
    expect(rejection("FROM x\nENV PATH").message).toBe("Dockerfile:2: ENV must have two arguments");
    expect(rejection("FROM x\nLABEL a=b c").message).toBe(
      'Dockerfile:2: Syntax error - can\'t find = in "c". Must be of the form: name=value',
    );
  });

  it("keeps ARG words as written", () => {
    expect(node('ARG a b=c d="e f"').args).toEqual(["a", "b=c", 'd="e f"']);
  });

  it("splits EXPOSE, FROM and VOLUME on whitespace and keeps USER, WORKDIR whole", () => {
    expect(node("EXPOSE 80  443/tcp").args).toEqual(["80", "443/tcp"]);
    expect(node("VOLUME /a /b").args).toEqual(["/a", "/b"]);
    expect(node("USER a b").args).toEqual(["a b"]);
    expect(node("WORKDIR /a b").args).toEqual(["/a b"]);
    expect(node("MAINTAINER Jane Doe <j@d>").args).toEqual(["Jane Doe <j@d>"]);
  });

  it("reads flags before the arguments; `--` ends them", () => {
    const n = node('COPY --from=build --chmod="6 44" -- --x /y');
    expect(n.flags).toEqual(["--from=build", "--chmod=6 44"]);
    expect(n.args).toEqual(["--x", "/y"]);
    expect(dump('CMD --doit=true -- [ "a", "b" ]')).toBe('(cmd ["--doit=true"] "a" "b")');
  });

  it("wraps the ONBUILD instruction as a child node", () => {
    const n = node("ONBUILD RUN echo hi");
    expect(n.keyword).toBe("onbuild");
    expect(n.args).toEqual([]);
    expect(n.child).toMatchObject({ keyword: "run", args: ["echo hi"], original: "RUN echo hi" });
    expect(dumpNode(n)).toBe('onbuild (run "echo hi")');
    expect(node("ONBUILD").child).toBeUndefined();
  });

  it("parses HEALTHCHECK with its type word and command", () => {
    expect(dump('HEALTHCHECK NONE\nHEALTHCHECK --interval=5s CMD ["curl", "-f"]\nHEALTHCHECK CMD a b')).toBe(
      '(healthcheck "NONE")\n(healthcheck ["--interval=5s"] "CMD" "curl" "-f")\n(healthcheck "CMD" "a b")',
    );
    expect(node('HEALTHCHECK CMD ["a"]').json).toBe(true);
  });
});

describe("heredocs", () => {
  it("reads one heredoc body and extends the line range over it", () => {
    const ast = parseDockerfile("FROM x\nRUN <<EOF\necho a\necho b\nEOF\nCMD c\n");
    expect(ast.nodes[1]?.heredocs).toEqual([{ name: "EOF", content: "echo a\necho b\n", expand: true, chomp: false }]);
    expect(ast.nodes[1]?.args).toEqual(["<<EOF"]);
    expect(ast.nodes[1]?.range).toEqual({ startLine: 2, endLine: 5 });
    expect(ast.nodes[2]?.range).toEqual({ startLine: 6, endLine: 6 });
  });

  it("reads several heredocs per instruction, in order", () => {
    const n = node("COPY <<FILE1 <<-FILE2 /dest\ncontent 1\nFILE1\n\tcontent 2\n\tFILE2\n");
    expect(n.heredocs).toEqual([
      { name: "FILE1", content: "content 1\n", expand: true, chomp: false },
      { name: "FILE2", content: "\tcontent 2\n", expand: true, chomp: true },
    ]);
    expect(n.range).toEqual({ startLine: 1, endLine: 5 });
  });

  it("does not expand quoted delimiters and accepts a file descriptor prefix", () => {
    const ast = parseDockerfile("RUN <<'A' 3<<\"B\" 4<<C <<D\nA\nB\nC\nD\n");
    expect(ast.nodes[0]?.heredocs).toEqual([
      { name: "A", content: "", expand: false, chomp: false },
      { name: "B", content: "", expand: false, chomp: false, fileDescriptor: 3 },
      { name: "C", content: "", expand: true, chomp: false, fileDescriptor: 4 },
      { name: "D", content: "", expand: true, chomp: false },
    ]);
    expect(node("RUN <<eo'f'\nx\neof\n").heredocs[0]).toMatchObject({ name: "eof", expand: false });
    expect(node("RUN <<eo\\'f\nx\neo'f\n").heredocs[0]).toMatchObject({ name: "eo'f", expand: true });
    expect(node("RUN <<  EOF  > foo\nEOF\n").heredocs[0]).toMatchObject({ name: "EOF" });
    // A marker glued to another `<<` is not a marker.
    expect(node("RUN 4<<C<<D\nx").heredocs).toEqual([]);
  });

  it("only recognises heredocs in RUN, COPY and ADD (also under ONBUILD), not in JSON or quotes", () => {
    expect(nodes("USER <<INVALID\nINVALID").map((n) => n.keyword)).toEqual(["user", "invalid"]);
    expect(node('RUN ["<<EOF"]').heredocs).toEqual([]);
    expect(node('RUN "<<EOF"').heredocs).toEqual([]);
    expect(node("ONBUILD RUN <<EOF\nhi\nEOF").heredocs).toEqual([
      { name: "EOF", content: "hi\n", expand: true, chomp: false },
    ]);
    expect(node("add <<EOF /x\nhi\nEOF").heredocs).toHaveLength(1);
  });

  it("keeps the body raw: comments, quotes, CRLF and tabs untouched", () => {
    const n = node("RUN <<-EOF\r\n# not a comment\r\n\t'q' \"d\" \\\r\n\tEOF\r\n");
    expect(n.heredocs[0]?.content).toBe("# not a comment\r\n\t'q' \"d\" \\\r\n");
  });

  it("rejects an unterminated heredoc and a malformed delimiter, with the lines", () => {
    const open = rejection("FROM x\nRUN <<EOF\necho hi\n");
    expect(open.message).toBe("Dockerfile:2: unterminated heredoc");
    expect(open.range).toEqual({ startLine: 2, endLine: 3 });
    // The `<<"b'}` word comes out of the ${...} text; its delimiter has an unmatched quote.
    expect(rejection("FROM x\nRUN ${x:-'a <<\"b'}\n").message).toBe(
      'Dockerfile:2: failed to process "\\"b\'}": unexpected end of statement while looking for matching double-quote',
    );
    // An unmatched quote in the line itself hides every marker, as in BuildKit.
    expect(nodes('FROM x\nRUN <<"EOF\nEOF\n').map((n) => n.keyword)).toEqual(["from", "run", "eof"]);
    expect(node("RUN <<EOF it's\nEOF\n").heredocs).toEqual([]);
  });
});

describe("errors", () => {
  it("rejects files without instructions", () => {
    expect(rejection("").message).toBe("Dockerfile: file with no instructions");
    expect(rejection("# just a comment\n\n# another\n").message).toBe("Dockerfile:3: file with no instructions");
  });

  it("rejects a line longer than BuildKit's 64 KiB scanner limit", () => {
    const err = rejection(`FROM x\nLABEL a=${"b".repeat(70_000)}\n`);
    expect(err.detail).toBe("dockerfile line greater than max allowed size of 65535");
    expect(err.line).toBe(2);
    expect(parseDockerfile(`FROM x\nLABEL a=${"b".repeat(60_000)}\n`).nodes).toHaveLength(2);
  });

  it("is a DockerfileError that prints file:line: message", () => {
    const err = rejection("FROM x\n\nENV ONLY", "ctx/Dockerfile");
    expect(err).toBeInstanceOf(DockerfileError);
    expect(err.message).toBe("ctx/Dockerfile:3: ENV must have two arguments");
    expect(err.range).toEqual({ startLine: 3, endLine: 3 });
  });
});

describe("result shape", () => {
  it("returns the file name, escape token and nodes", () => {
    const ast: DockerfileAst = parseDockerfile("FROM x", { file: "a/Dockerfile" });
    expect(ast.file).toBe("a/Dockerfile");
    expect(ast.escapeToken).toBe("\\");
    expect(ast.nodes).toHaveLength(1);
    expect(ast.warnings).toEqual([]);
  });
});
