import { describe, expect, it } from "vitest";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { expandInstruction } from "../src/dockerfile/instruction-expand.js";
import { parseInstruction, type Instruction } from "../src/dockerfile/instructions.js";
import { envLookup } from "../src/dockerfile/shell-lexer.js";
import { heredoc, node, type NodeOptions } from "./instructions-helpers.js";

const env = envLookup({ A: "alpha", B: "beta", DIR: "/opt/app", U: "1000", PORTS: "80 443/udp", EMPTY: "" });
const instr = (keyword: string, args: string[], options?: NodeOptions): Instruction =>
  parseInstruction(node(keyword, args, options));

describe("expandInstruction", () => {
  it("expands ENV and LABEL keys and values and reports the variables used", () => {
    const r = expandInstruction(instr("env", ["K_$A", "${B}-x", "=", "PLAIN", "'$A'", "="]), env);
    expect(r.instruction).toMatchObject({
      env: [
        { key: "K_alpha", value: "beta-x" },
        { key: "PLAIN", value: "$A" },
      ],
    });
    expect(r.usedArgs).toEqual(["A", "B"]);
    const label = expandInstruction(instr("label", ["v", "${A:-none}.${MISSING:-d}", "="]), env);
    expect(label.instruction).toMatchObject({ labels: [{ key: "v", value: "alpha.d" }] });
    expect(label.usedArgs).toEqual(["A"]);
  });
  it("expands COPY sources, dest, chown, chmod and expandable heredoc bodies only", () => {
    const copy = instr("copy", ["$A/*.go", "<<EOF", "<<'RAW'", "$DIR/"], {
      flags: ["--chown=$U:$U", "--chmod=${MODE:-644}", "--exclude=$A"],
      heredocs: [heredoc("EOF", 'say "$A" \\$B\n'), heredoc("RAW", "keep $A\n", { expand: false })],
    });
    const r = expandInstruction(copy, env);
    expect(r.instruction).toMatchObject({
      sources: ["alpha/*.go"],
      dest: "/opt/app/",
      chown: "1000:1000",
      chmod: "644",
      excludes: ["$A"],
      contents: [
        // Quotes are kept in heredoc bodies; the escape stays BuildKit's backslash.
        { path: "EOF", data: 'say "alpha" $B\n' },
        { path: "RAW", data: "keep $A\n" },
      ],
    });
    expect(new Set(r.usedArgs)).toEqual(new Set(["A", "DIR", "U"]));
    // The input is not modified.
    expect(copy).toMatchObject({ sources: ["$A/*.go"], chown: "$U:$U" });
  });
  it("refuses variables in COPY --from", () => {
    const copy = instr("copy", ["a", "b"], { flags: ["--from=$A"], line: 9 });
    expect(() => expandInstruction(copy, env)).toThrow(
      "Dockerfile:9: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
    );
    expect(expandInstruction(instr("copy", ["a", "b"], { flags: ["--from=builder"] }), env).instruction).toMatchObject({
      from: "builder",
    });
  });
  it("expands ADD checksum", () => {
    const r = expandInstruction(instr("add", ["https://x/$A.tgz", "/"], { flags: ["--checksum=sha256:$B"] }), env);
    expect(r.instruction).toMatchObject({ sources: ["https://x/alpha.tgz"], checksum: "sha256:beta" });
  });
  it("splits EXPOSE words and expands USER, WORKDIR, VOLUME, STOPSIGNAL", () => {
    expect(expandInstruction(instr("expose", ["$PORTS", "8080"]), env).instruction).toMatchObject({
      ports: ["80", "443/udp", "8080"],
    });
    expect(expandInstruction(instr("user", ["$U"]), env).instruction).toMatchObject({ user: "1000" });
    expect(expandInstruction(instr("workdir", ["$DIR/src"]), env).instruction).toMatchObject({ path: "/opt/app/src" });
    expect(expandInstruction(instr("volume", ["$DIR", "/x"], { json: true }), env).instruction).toMatchObject({
      volumes: ["/opt/app", "/x"],
    });
    expect(expandInstruction(instr("stopsignal", ["SIG${B:+TERM}"]), env).instruction).toMatchObject({ signal: "SIGTERM" });
  });
  it("leaves RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/ONBUILD command text alone", () => {
    for (const i of [
      instr("run", ["echo $A"]),
      instr("cmd", ["echo", "$A"], { json: true }),
      instr("entrypoint", ["$A"]),
      instr("shell", ["/bin/$A"], { json: true }),
      instr("healthcheck", ["CMD", "check $A"]),
      instr("onbuild", ["run", "echo $A"], { child: node("run", ["echo $A"]) }),
    ]) {
      const r = expandInstruction(i, env);
      expect(r.instruction).toEqual(i.kind === "run" ? { ...i, mounts: [] } : i);
      expect(r.usedArgs).toEqual([]);
    }
  });
  it("expands RUN mount values", () => {
    const run = instr("run", ["make"], { flags: ["--mount=type=cache,target=$DIR/cache,uid=$U,id=${A}"] });
    const r = expandInstruction(run, env);
    expect(r.instruction).toMatchObject({ mounts: [{ type: "cache", target: "/opt/app/cache", uid: 1000, id: "alpha" }] });
    expect(r.usedArgs).toEqual(["DIR", "U", "A"]);
    expect(() => expandInstruction(instr("run", ["x"], { flags: ["--mount=type=cache,target=/c,uid=$A"] }), env)).toThrow(
      "invalid value alpha for uid",
    );
  });
  it("expands FROM image and platform, refusing blank results", () => {
    const from = instr("from", ["${A}:${B}", "AS", "x"], { flags: ["--platform=linux/$A"] });
    expect(expandInstruction(from, env).instruction).toMatchObject({ image: "alpha:beta", platform: "linux/alpha", stageName: "x" });
    expect(() => expandInstruction(instr("from", ["$NOPE"]), env)).toThrow("base name ($NOPE) should not be blank");
    expect(() => expandInstruction(instr("from", ["x"], { flags: ["--platform=$EMPTY"] }), env)).toThrow(
      "empty platform value from expression $EMPTY",
    );
  });
  it("expands ARG defaults but never names", () => {
    const r = expandInstruction(instr("arg", ["$A=$B", "PLAIN"]), env);
    expect(r.instruction).toMatchObject({ args: [{ key: "$A", value: "beta" }, { key: "PLAIN" }] });
  });
  it("honours the escape token and reports bad substitutions as DockerfileError", () => {
    expect(expandInstruction(instr("workdir", ["`$A"]), env, "`").instruction).toMatchObject({ path: "$A" });
    let err: unknown;
    try {
      expandInstruction(instr("workdir", ["${A"], { line: 2 }), env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DockerfileError);
    expect((err as DockerfileError).line).toBe(2);
  });
});
