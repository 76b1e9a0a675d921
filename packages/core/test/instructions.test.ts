import { describe, expect, it } from "vitest";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { parseInstruction, type Instruction } from "../src/dockerfile/instructions.js";
import { heredoc, node, type NodeOptions } from "./instructions-helpers.js";

const parse = (keyword: string, args: string[], options?: NodeOptions): Instruction =>
  parseInstruction(node(keyword, args, options));

function parseError(keyword: string, args: string[], options?: NodeOptions): DockerfileError {
  try {
    parse(keyword, args, options);
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error(`${keyword} ${args.join(" ")} was accepted`);
}

const errorOf = (keyword: string, args: string[], options?: NodeOptions): string =>
  parseError(keyword, args, options).detail;

describe("FROM", () => {
  it("reads image, lower-cased stage name and platform", () => {
    const from = parse("from", ["golang:1.22", "AS", "Builder"], { flags: ["--platform=$BUILDPLATFORM"] });
    expect(from).toMatchObject({ kind: "from", image: "golang:1.22", stageName: "builder", platform: "$BUILDPLATFORM" });
  });
  it("accepts `as` in any case and no name", () => {
    expect(parse("from", ["a", "as", "x"])).toMatchObject({ stageName: "x" });
    const plain = parse("from", ["scratch"]);
    expect(plain).toMatchObject({ kind: "from", image: "scratch" });
    expect("stageName" in plain).toBe(false);
  });
  it("rejects bad argument counts and stage names like BuildKit", () => {
    expect(errorOf("from", ["a", "b"])).toBe("FROM requires either one or three arguments");
    expect(errorOf("from", ["a", "AS", "1st"])).toBe(
      'invalid name for build stage: "1st", name can\'t start with a number or contain symbols',
    );
    expect(errorOf("from", ["a", "AS", "a$b"])).toContain("invalid name for build stage");
    expect(errorOf("from", ["a"], { flags: ["--platfrom=linux/amd64"] })).toBe(
      "unknown flag: --platfrom (did you mean platform?)",
    );
  });
  it("keeps range and original text", () => {
    const from = parseInstruction(node("from", ["alpine"], { line: 7, original: "  FROM alpine  " }));
    expect(from.range).toEqual({ startLine: 7, endLine: 7 });
    expect(from.original).toBe("FROM alpine");
  });
});

describe("RUN / CMD / ENTRYPOINT", () => {
  it("shell form keeps the command line and prepends the shell", () => {
    const run = parse("run", ["echo $HOME && ls"]);
    expect(run).toMatchObject({
      kind: "run",
      command: ["echo $HOME && ls"],
      prependShell: true,
      network: "default",
      security: "sandbox",
      mounts: [],
      devices: [],
    });
  });
  it("exec form keeps argv untouched", () => {
    const run = parse("run", ["/bin/sh", "-c", "echo $X"], { json: true });
    expect(run).toMatchObject({ command: ["/bin/sh", "-c", "echo $X"], prependShell: false });
  });
  it("keeps heredocs as inline files", () => {
    const run = parse("run", ["<<EOF"], { heredocs: [heredoc("EOF", "\techo hi\n", { chomp: true })] });
    expect(run).toMatchObject({ files: [{ name: "EOF", data: "\techo hi\n", chomp: true }] });
  });
  it("parses --network and --security", () => {
    expect(parse("run", ["x"], { flags: ["--network=none"] })).toMatchObject({ network: "none" });
    expect(parse("run", ["x"], { flags: ["--network=host", "--security=insecure"] })).toMatchObject({
      network: "host",
      security: "insecure",
      flagsUsed: ["network", "security"],
    });
    expect(errorOf("run", ["x"], { flags: ["--network=bridge"] })).toBe('invalid network mode "bridge"');
    expect(errorOf("run", ["x"], { flags: ["--security=root"] })).toBe('security "root" is not valid');
    expect(errorOf("run", ["x"], { flags: ["--network"] })).toBe("missing a value on flag: --network");
    expect(errorOf("run", ["x"], { flags: ["--network=none", "--network=host"] })).toBe(
      "duplicate flag specified: --network",
    );
    expect(errorOf("run", ["x"], { flags: ["--mout=type=cache,target=/x"] })).toBe(
      "unknown flag: --mout (did you mean mount?)",
    );
  });
  it("parses --device", () => {
    const run = parse("run", ["x"], { flags: ["--device=vendor.com/gpu=all,required", "--device=name=foo"] });
    expect(run).toMatchObject({
      devices: [
        { name: "vendor.com/gpu=all", required: true },
        { name: "foo", required: false },
      ],
    });
  });
  it("CMD keeps forms; ENTRYPOINT [] clears", () => {
    expect(parse("cmd", ["a", "b"], { json: true })).toMatchObject({ command: ["a", "b"], prependShell: false });
    expect(parse("cmd", [], { json: true })).toMatchObject({ command: [] });
    expect(parse("cmd", ["echo hi"])).toMatchObject({ command: ["echo hi"], prependShell: true });
    expect(parse("entrypoint", [], { json: true })).toMatchObject({ kind: "entrypoint", command: null });
    expect(parse("entrypoint", ["/bin/app"])).toMatchObject({ command: ["/bin/app"], prependShell: true });
    expect(errorOf("cmd", ["x"], { flags: ["--foo"] })).toBe("unknown flag: --foo");
  });
});

describe("ENV / LABEL / MAINTAINER", () => {
  it("reads name/value/separator triples", () => {
    const env = parse("env", ["A", "1", "=", "SCUBA", "1 DUBA 3", ""]);
    expect(env).toMatchObject({
      kind: "env",
      env: [
        { key: "A", value: "1", noDelim: false },
        { key: "SCUBA", value: "1 DUBA 3", noDelim: true },
      ],
    });
    expect(parse("label", ["org.x", "y z", "="])).toMatchObject({ labels: [{ key: "org.x", value: "y z" }] });
  });
  it("rejects empty, malformed and blank-named pairs", () => {
    expect(errorOf("env", [])).toBe("ENV requires at least one argument");
    expect(errorOf("label", [])).toBe("LABEL requires at least one argument");
    expect(errorOf("env", ["a", "b"])).toBe("Bad input to ENV, too many arguments");
    expect(errorOf("label", ["", "v", "="])).toBe("LABEL names can not be blank");
    expect(errorOf("env", ["A", "1", "="], { flags: ["--x=1"] })).toBe("unknown flag: --x");
  });
  it("MAINTAINER takes exactly one argument and no flag", () => {
    expect(parse("maintainer", ["me <me@x>"])).toMatchObject({ kind: "maintainer", maintainer: "me <me@x>" });
    expect(errorOf("maintainer", [])).toBe("MAINTAINER requires exactly one argument");
    expect(errorOf("maintainer", ["joe@example.com"], { flags: ["--boo"] })).toBe("unknown flag: --boo");
  });
});

describe("ADD / COPY", () => {
  it("splits sources, heredoc sources and destination", () => {
    const copy = parse("copy", ["a", "<<EOF", "<<-'RAW'", "/dst/"], {
      heredocs: [heredoc("EOF", "x=$X\n"), heredoc("RAW", "\t\tkeep $Y\n", { expand: false, chomp: true })],
    });
    expect(copy).toMatchObject({
      kind: "copy",
      sources: ["a"],
      dest: "/dst/",
      contents: [
        { path: "EOF", data: "x=$X\n", expand: true },
        { path: "RAW", data: "keep $Y\n", expand: false },
      ],
      link: false,
      parents: false,
      excludes: [],
    });
  });
  it("parses every COPY flag", () => {
    const copy = parse("copy", ["src", "/dst"], {
      flags: [
        "--from=builder",
        "--chown=1000:1000",
        "--chmod=644",
        "--link",
        "--parents=true",
        "--exclude=*.md",
        "--exclude=tmp/",
      ],
    });
    expect(copy).toMatchObject({
      from: "builder",
      chown: "1000:1000",
      chmod: "644",
      link: true,
      parents: true,
      excludes: ["*.md", "tmp/"],
    });
    expect(parse("copy", ["a", "b"], { flags: ["--link=false"] })).toMatchObject({ link: false });
    expect(parse("copy", ["a", "b"], { flags: ["--link=TRUE"] })).toMatchObject({ link: true });
  });
  it("parses every ADD flag", () => {
    const add = parse("add", ["https://x/y.tar.gz", "/dst"], {
      flags: ["--checksum=sha256:abc", "--keep-git-dir=true", "--unpack=false", "--chmod=755", "--link"],
    });
    expect(add).toMatchObject({ kind: "add", checksum: "sha256:abc", keepGitDir: true, unpack: false, chmod: "755", link: true });
    const plain = parse("add", ["a", "b"]);
    expect(plain).toMatchObject({ link: false });
    expect("keepGitDir" in plain || "unpack" in plain).toBe(false);
  });
  it("rejects what BuildKit rejects", () => {
    expect(errorOf("copy", ["only"])).toBe(
      "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
    );
    expect(errorOf("add", ["only"])).toContain("ADD requires at least two arguments");
    expect(errorOf("copy", ["a", "<<EOF"], { heredocs: [heredoc("EOF", "x\n")] })).toBe(
      "COPY cannot accept a heredoc as a destination",
    );
    expect(errorOf("copy", ["a", "b"], { flags: ["--checksum=sha256:x"] })).toBe("unknown flag: --checksum");
    expect(errorOf("add", ["a", "b"], { flags: ["--from=x"] })).toBe("unknown flag: --from");
    expect(errorOf("copy", ["a", "b"], { flags: ["--chown=1", "--chown=2"] })).toBe("duplicate flag specified: --chown");
    expect(errorOf("copy", ["a", "b"], { flags: ["--link=yes"] })).toBe("expecting boolean value for flag --link, not: yes");
    expect(errorOf("copy", ["a", "b"], { flags: ["--link="] })).toBe("missing a value on flag: --link");
    expect(errorOf("copy", ["a", "b"], { flags: ["--exclude"] })).toBe("missing a value on flag: --exclude");
    expect(errorOf("copy", ["a", "b"], { flags: ["-from=x"] })).toBe("arg should start with -- : -from=x");
    expect(errorOf("copy", ["a", "b"], { flags: ["--chmd=1"] })).toBe("unknown flag: --chmd (did you mean chmod?)");
  });
  it("stops at a bare --", () => {
    expect(parse("copy", ["a", "b"], { flags: ["--link", "--", "--bogus"] })).toMatchObject({ link: true });
  });
});

describe("EXPOSE / VOLUME / USER / WORKDIR / STOPSIGNAL / SHELL", () => {
  it("EXPOSE sorts its ports", () => {
    expect(parse("expose", ["8080/tcp", "443", "80"])).toMatchObject({ ports: ["443", "80", "8080/tcp"] });
    expect(errorOf("expose", [])).toBe("EXPOSE requires at least one argument");
  });
  it("VOLUME trims and refuses empty entries", () => {
    expect(parse("volume", ["/a", " /b "], { json: true })).toMatchObject({ volumes: ["/a", "/b"] });
    expect(errorOf("volume", ["/a", " "], { json: true })).toBe("VOLUME specified can not be an empty string");
    expect(errorOf("volume", [])).toBe("VOLUME requires at least one argument");
  });
  it("single-argument instructions", () => {
    expect(parse("user", ["app:app"])).toMatchObject({ kind: "user", user: "app:app" });
    expect(parse("workdir", ["/src"])).toMatchObject({ kind: "workdir", path: "/src" });
    expect(parse("stopsignal", ["SIGTERM"])).toMatchObject({ kind: "stopsignal", signal: "SIGTERM" });
    for (const kw of ["user", "workdir", "stopsignal", "maintainer"]) {
      expect(errorOf(kw, [])).toBe(`${kw.toUpperCase()} requires exactly one argument`);
    }
    expect(errorOf("workdir", ["/a"], { flags: ["--x"] })).toBe("unknown flag: --x");
    // BuildKit never looks at STOPSIGNAL's flags.
    expect(parse("stopsignal", ["9"], { flags: ["--whatever"] })).toMatchObject({ signal: "9" });
  });
  it("SHELL needs JSON", () => {
    expect(parse("shell", ["/bin/bash", "-c"], { json: true })).toMatchObject({ shell: ["/bin/bash", "-c"] });
    expect(errorOf("shell", ["/bin/bash -c"])).toBe("SHELL requires the arguments to be in JSON form");
    expect(errorOf("shell", [], { json: true })).toBe("SHELL requires at least one argument");
  });
});

describe("ARG", () => {
  it("reads several name[=default] per line", () => {
    expect(parse("arg", ["A", "B=2", "C=", "D=x=y"])).toMatchObject({
      args: [{ key: "A" }, { key: "B", value: "2" }, { key: "C", value: "" }, { key: "D", value: "x=y" }],
    });
    const arg = parse("arg", ["A"]);
    expect(arg.kind === "arg" && "value" in (arg.args[0] ?? {})).toBe(false);
  });
  it("rejects no argument and blank names", () => {
    expect(errorOf("arg", [])).toBe("ARG requires at least one argument");
    expect(errorOf("arg", ["=x"])).toBe("ARG names can not be blank");
  });
});

describe("ONBUILD", () => {
  it("keeps the trigger text and the parsed child", () => {
    const child = node("run", ["echo hi"]);
    const onbuild = parse("onbuild", ["run", "echo hi"], { child, original: "ONBUILD RUN echo hi" });
    expect(onbuild).toMatchObject({ kind: "onbuild", expression: "RUN echo hi", child: { kind: "run", command: ["echo hi"] } });
  });
  it("appends heredoc bodies to the expression", () => {
    const child = node("copy", ["<<EOF", "/x"], { heredocs: [heredoc("EOF", "hello\n")] });
    const onbuild = parse("onbuild", ["copy", "<<EOF", "/x"], { child, original: "onbuild COPY <<EOF /x" });
    expect(onbuild).toMatchObject({ expression: "COPY <<EOF /x\nhello\nEOF" });
  });
  it("rejects chained ONBUILD and forbidden triggers", () => {
    expect(errorOf("onbuild", ["onbuild", "run", "x"], { child: node("onbuild", ["run", "x"]) })).toBe(
      "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
    );
    expect(errorOf("onbuild", ["from", "scratch"], { child: node("from", ["scratch"]) })).toBe(
      "FROM isn't allowed as an ONBUILD trigger",
    );
    expect(errorOf("onbuild", ["maintainer", "x"], { child: node("maintainer", ["x"]) })).toBe(
      "MAINTAINER isn't allowed as an ONBUILD trigger",
    );
    expect(errorOf("onbuild", [])).toBe("ONBUILD requires at least one argument");
  });
  it("a child that does not parse is kept as an error, as BuildKit only fails downstream", () => {
    const onbuild = parse("onbuild", ["frob", "x"], { child: node("frob", ["x"], { original: "FROB x" }) });
    expect(onbuild).toMatchObject({ kind: "onbuild", childError: "unknown instruction: FROB (did you mean FROM?)" });
  });
});

describe("HEALTHCHECK", () => {
  it("NONE", () => {
    expect(parse("healthcheck", ["NONE"])).toMatchObject({ health: { test: ["NONE"] } });
    expect(parse("healthcheck", ["none"])).toMatchObject({ health: { test: ["NONE"] } });
    expect(errorOf("healthcheck", ["NONE", "x"])).toBe("HEALTHCHECK NONE takes no arguments");
  });
  it("CMD in shell and exec form with every flag", () => {
    const hc = parse("healthcheck", ["CMD", "curl -f http://localhost/"], {
      flags: ["--interval=1m30s", "--timeout=.5s", "--start-period=1h", "--start-interval=2ms", "--retries=3"],
    });
    expect(hc).toMatchObject({
      health: {
        test: ["CMD-SHELL", "curl -f http://localhost/"],
        interval: 90e9,
        timeout: 5e8,
        startPeriod: 3600e9,
        startInterval: 2e6,
        retries: 3,
      },
    });
    expect(parse("healthcheck", ["CMD", "/bin/check", "-v"], { json: true })).toMatchObject({
      health: { test: ["CMD", "/bin/check", "-v"], interval: 0, retries: 0 },
    });
    expect(parse("healthcheck", ["CMD", "x"], { flags: ["--interval=0s"] })).toMatchObject({ health: { interval: 0 } });
    expect(parse("healthcheck", ["CMD", "x"], { flags: ["--interval=1.5µs1ms"] })).toMatchObject({
      health: { interval: 1_001_500 },
    });
  });
  it("rejects bad durations, retries and types with BuildKit's messages", () => {
    const hc = (flags: string[], args = ["CMD", "x"]): string => errorOf("healthcheck", args, { flags });
    expect(hc(["--interval=50ns"])).toBe('Interval "interval" cannot be less than 1ms');
    expect(hc(["--timeout=-1s"])).toBe('Interval "timeout" cannot be less than 1ms');
    expect(hc(["--start-period=10"])).toBe('time: missing unit in duration "10"');
    expect(hc(["--start-interval=3d"])).toBe('time: unknown unit "d" in duration "3d"');
    expect(hc(["--interval=abc"])).toBe('time: invalid duration "abc"');
    expect(hc(["--interval=."])).toBe('time: invalid duration "."');
    expect(hc(["--retries=-1"])).toBe("--retries cannot be negative (-1)");
    expect(hc(["--retries=x"])).toBe('strconv.ParseInt: parsing "x": invalid syntax');
    expect(hc(["--retries=3000000000"])).toBe('strconv.ParseInt: parsing "3000000000": value out of range');
    expect(hc(["--intervals=1s"])).toBe("unknown flag: --intervals (did you mean interval?)");
    expect(hc([], ["CMD"])).toBe("Missing command after HEALTHCHECK CMD");
    expect(hc([], ["RUN", "x"])).toBe('Unknown type "RUN" in HEALTHCHECK (try CMD)');
    expect(errorOf("healthcheck", [])).toBe("HEALTHCHECK requires at least one argument");
  });
});

describe("unknown instructions", () => {
  it("suggests the closest instruction in the user's casing", () => {
    expect(errorOf("form", ["alpine"], { original: "FORM alpine" })).toBe("unknown instruction: FORM (did you mean FROM?)");
    expect(errorOf("form", ["alpine"], { original: "form alpine" })).toBe("unknown instruction: form (did you mean from?)");
    expect(errorOf("cpy", ["a", "b"], { original: "Cpy a b" })).toBe("unknown instruction: Cpy (did you mean copy?)");
    expect(errorOf("fntrypoint", ["x"], { original: "FNTRYPOINT x" })).toBe(
      "unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)",
    );
    expect(errorOf("badcmd", ["x"], { original: "BADCMD x" })).toBe("unknown instruction: BADCMD");
  });
  it("prints as Dockerfile:LINE: message", () => {
    const err = parseError("form", ["x"], { original: "FORM x", line: 3 });
    expect(err.message).toBe("Dockerfile:3: unknown instruction: FORM (did you mean FROM?)");
    expect(err.line).toBe(3);
  });
});
