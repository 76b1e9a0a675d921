// Dockerfile text → parser.ts → typed instructions, for the forms whose shape depends on the parser.
import { describe, expect, it } from "vitest";
import { expandInstruction } from "../src/dockerfile/instruction-expand.js";
import { parseInstructions } from "../src/dockerfile/instructions.js";
import { parseDockerfile } from "../src/dockerfile/parser.js";
import { envLookup } from "../src/dockerfile/shell-lexer.js";

const typed = (text: string) => parseInstructions(parseDockerfile(text));

describe("typed instructions from parsed text", () => {
  it("ENV and LABEL in both forms", () => {
    const [, env, legacy, label] = typed('FROM a\nENV A=1 B="two words"\nENV SCUBA 1 DUBA 3\nLABEL a=b "c d"=e\n');
    expect(env).toMatchObject({ kind: "env", env: [{ key: "A", value: "1", noDelim: false }, { key: "B", value: '"two words"' }] });
    expect(legacy).toMatchObject({ env: [{ key: "SCUBA", value: "1 DUBA 3", noDelim: true }] });
    expect(label).toMatchObject({ labels: [{ key: "a", value: "b" }, { key: '"c d"', value: "e" }] });
    // Quotes go at expansion time, as in BuildKit.
    expect(expandInstruction(env!, envLookup([])).instruction).toMatchObject({ env: [{ value: "1" }, { value: "two words" }] });
    expect(expandInstruction(label!, envLookup([])).instruction).toMatchObject({ labels: [{}, { key: "c d" }] });
  });

  it("RUN, COPY and ONBUILD heredocs", () => {
    const [, run, copy, onbuild] = typed(
      [
        "FROM a",
        "RUN --network=none <<-EOT bash",
        "\techo $HOME",
        "\tEOT",
        'COPY --chmod=600 <<-"CONF" /etc/app.conf',
        "\tkey=$VALUE",
        "CONF",
        "ONBUILD RUN <<X",
        "echo later",
        "X",
        "",
      ].join("\n"),
    );
    expect(run).toMatchObject({
      kind: "run",
      network: "none",
      command: ["<<-EOT bash"],
      prependShell: true,
      files: [{ name: "EOT", chomp: true }],
    });
    expect(copy).toMatchObject({ kind: "copy", chmod: "600", contents: [{ path: "CONF", data: "key=$VALUE\n", expand: false }], dest: "/etc/app.conf" });
    expect(onbuild).toMatchObject({ kind: "onbuild", expression: "RUN <<X\necho later\nX", child: { kind: "run", files: [{ name: "X" }] } });
    // A quoted heredoc body is never expanded.
    expect(expandInstruction(copy!, envLookup({ VALUE: "v" })).instruction).toMatchObject({ contents: [{ data: "key=$VALUE\n" }] });
  });

  it("exec and shell forms of CMD, ENTRYPOINT, SHELL, VOLUME, ADD", () => {
    const [, cmd, ep, sh, vol, add, add2] = typed(
      'FROM a\nCMD ["echo", "hi"]\nENTRYPOINT exec app --flag\nSHELL ["pwsh", "-c"]\nVOLUME ["/a", "/b"]\nADD ["a b", "/c d/"]\nADD --keep-git-dir https://github.com/x/y.git#main /src\n',
    );
    expect(cmd).toMatchObject({ command: ["echo", "hi"], prependShell: false });
    expect(ep).toMatchObject({ command: ["exec app --flag"], prependShell: true });
    expect(sh).toMatchObject({ shell: ["pwsh", "-c"] });
    expect(vol).toMatchObject({ volumes: ["/a", "/b"] });
    expect(add).toMatchObject({ sources: ["a b"], dest: "/c d/" });
    expect(add2).toMatchObject({ keepGitDir: true, sources: ["https://github.com/x/y.git#main"] });
  });

  it("keeps ranges and originals of multi-line instructions", () => {
    const [, run] = typed("FROM a\nRUN apt-get update \\\n  && apt-get install -y x\n");
    expect(run?.range).toMatchObject({ startLine: 2, endLine: 3 });
    expect(run?.original).toBe("RUN apt-get update   && apt-get install -y x");
  });
});
