// Dockerfile text → parseDockerfileModel → ARG scopes and expansion, driven step by step the
// way the build engine does.
import { describe, expect, it } from "vitest";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { GlobalArgScope, type StageEnv } from "../src/dockerfile/instruction-argscope.js";
import { expandInstruction } from "../src/dockerfile/instruction-expand.js";
import type { Instruction } from "../src/dockerfile/instructions.js";
import { findStage, parseDockerfileModel, type DockerfileModel } from "../src/dockerfile/stages.js";

const platforms = {
  buildPlatform: { os: "linux", architecture: "amd64" },
  targetPlatform: { os: "linux", architecture: "arm64", variant: "v8" },
};

interface Step {
  instruction: Instruction;
  usedArgs: string[];
  buildArgs: string[];
  history?: string;
}

/** Dispatches one stage's instructions against its scope, recording what each step saw. */
function dispatch(model: DockerfileModel, stage: StageEnv, index: number): Step[] {
  const steps: Step[] = [];
  for (const instr of model.stages[index]?.instructions ?? []) {
    const { instruction, usedArgs } = expandInstruction(instr, stage.lookup(), model.escapeToken);
    const step: Step = { instruction, usedArgs, buildArgs: stage.buildArgsAmong(usedArgs).map((a) => `${a.key}=${a.value}`) };
    if (instruction.kind === "arg") stage.declareArgs(instr as typeof instruction);
    if (instruction.kind === "env") for (const e of instruction.env) stage.setEnv(e.key, e.value);
    if (instruction.kind === "run") step.history = `RUN ${[stage.runHistoryPrefix(), ...instruction.command].filter(Boolean).join(" ")}`;
    steps.push(step);
  }
  return steps;
}

const DOCKERFILE = `# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG BASE=golang:\${GO_VERSION}-alpine
ARG UNUSED

FROM --platform=$BUILDPLATFORM \${BASE} AS Build
ARG GO_VERSION
ARG TARGETARCH
ARG LDFLAGS="-s -w"
ENV CGO_ENABLED=0 GOARCH=\${TARGETARCH}
WORKDIR /src/\${GO_VERSION}
RUN --mount=type=cache,target=/root/.cache/go-build,id=go-\${TARGETARCH} go build -ldflags "$LDFLAGS" -o /out/app .

FROM build AS test
RUN go test ./...

FROM alpine:3.20
ARG GO_VERSION
USER \${APP_USER:-nobody}
COPY --from=build --chmod=0755 /out/app /usr/local/bin/app
COPY <<EOF /etc/app.conf
version=\${GO_VERSION}
EOF
EXPOSE 8080/tcp
HEALTHCHECK --interval=30s --timeout=5s CMD ["/usr/local/bin/app", "health"]
ENTRYPOINT ["/usr/local/bin/app"]
`;

describe("parseDockerfileModel + ARG scopes", () => {
  const model = parseDockerfileModel(DOCKERFILE);

  it("builds the typed model", () => {
    expect(model.escapeToken).toBe("\\");
    expect(model.globalArgs.flatMap((a) => a.args.map((x) => x.key))).toEqual(["GO_VERSION", "BASE", "UNUSED"]);
    expect(model.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.length])).toEqual([
      [0, "build", "${BASE}", 6],
      [1, "test", "build", 1],
      [2, undefined, "alpine:3.20", 7],
    ]);
    expect(model.stages[0]?.range).toEqual({ startLine: 6, endLine: 12 });
    expect(findStage(model.stages, "Build")?.index).toBe(0);
  });

  it("expands FROM with global args only, build args winning", () => {
    const global = GlobalArgScope.create(model.globalArgs, { ...platforms, buildArgs: { GO_VERSION: "1.23" } });
    const from = expandInstruction(model.stages[0]!.from, global.lookup(), model.escapeToken);
    expect(from.instruction).toMatchObject({ image: "golang:1.23-alpine", platform: "linux/amd64", stageName: "build" });
    expect(from.usedArgs).toEqual(["BASE", "BUILDPLATFORM"]);
  });

  it("scopes ARGs per stage and records the build args each step uses", () => {
    const global = GlobalArgScope.create(model.globalArgs, { ...platforms, buildArgs: { LDFLAGS: "-X main.v=1", HTTP_PROXY: "http://proxy:3128" } });
    const build = global.newStage();
    const steps = dispatch(model, build, 0);
    const [, , , env, workdir, run] = steps;
    expect(env?.instruction).toMatchObject({ env: [{ key: "CGO_ENABLED", value: "0" }, { key: "GOARCH", value: "arm64" }] });
    expect(env?.buildArgs).toEqual(["TARGETARCH=arm64"]);
    expect(workdir?.instruction).toMatchObject({ path: "/src/1.22" });
    expect(workdir?.buildArgs).toEqual(["GO_VERSION=1.22"]);
    expect(run?.instruction).toMatchObject({
      command: ['go build -ldflags "$LDFLAGS" -o /out/app .'],
      mounts: [{ type: "cache", target: "/root/.cache/go-build", id: "go-arm64", readOnly: false }],
    });
    // All declared ARGs are part of a RUN's history/cache key; the undeclared proxy is not.
    expect(run?.history).toBe(
      'RUN |3 GO_VERSION=1.22 TARGETARCH=arm64 LDFLAGS=-X main.v=1 go build -ldflags "$LDFLAGS" -o /out/app .',
    );
    expect(build.runEnv()).toContain("HTTP_PROXY=http://proxy:3128");
    expect(build.runEnv()).toContain("LDFLAGS=-X main.v=1");

    // `FROM build AS test` inherits the scope of `build`.
    const test = global.newStage(build);
    expect(dispatch(model, test, 1)[0]?.history).toBe(
      "RUN |3 GO_VERSION=1.22 TARGETARCH=arm64 LDFLAGS=-X main.v=1 go test ./...",
    );

    // An unrelated stage sees none of it until it redeclares.
    const final = global.newStage();
    expect(final.lookup()("TARGETARCH")).toBeUndefined();
    const out = dispatch(model, final, 2);
    expect(out[1]?.instruction).toMatchObject({ user: "nobody" });
    expect(out[2]?.instruction).toMatchObject({ from: "build", chmod: "0755", sources: ["/out/app"] });
    expect(out[3]?.instruction).toMatchObject({ contents: [{ path: "EOF", data: "version=1.22\n", expand: true }] });
    expect(out[3]?.buildArgs).toEqual(["GO_VERSION=1.22"]);
    expect(out[4]?.instruction).toMatchObject({ ports: ["8080/tcp"] });
    expect(out[5]?.instruction).toMatchObject({
      health: { test: ["CMD", "/usr/local/bin/app", "health"], interval: 30e9, timeout: 5e9 },
    });
    expect(out[6]?.instruction).toMatchObject({ command: ["/usr/local/bin/app"], prependShell: false });
  });

  it("TARGETSTAGE is the last stage's name unless a target is given", () => {
    const named = parseDockerfileModel("FROM a AS one\nFROM b AS Two\n");
    expect(GlobalArgScope.forModel(named, platforms).get("TARGETSTAGE")).toBe("two");
    expect(GlobalArgScope.forModel(named, { ...platforms, target: "one" }).get("TARGETSTAGE")).toBe("one");
    expect(GlobalArgScope.forModel(parseDockerfileModel("FROM a\n"), platforms).get("TARGETSTAGE")).toBe("default");
  });

  it("ENV pairs expand against the environment before the instruction; ARGs one by one", () => {
    const m = parseDockerfileModel("FROM a\nARG A=1 B=${A}2\nENV A=x B=$A\nRUN echo\n");
    const stage = GlobalArgScope.forModel(m, platforms).newStage();
    const steps = dispatch(m, stage, 0);
    expect(stage.declaredArgs()).toEqual([
      { key: "A", value: "1" },
      { key: "B", value: "12" },
    ]);
    expect(steps[1]?.instruction).toMatchObject({ env: [{ key: "A", value: "x" }, { key: "B", value: "1" }] });
    expect(steps[2]?.history).toBe("RUN |2 A=x B=1 echo");
  });

  it("rejects instructions before FROM other than ARG, with the line", () => {
    expect(() => parseDockerfileModel("ARG A\nENV B=1\nFROM x\n")).toThrow("Dockerfile:2: no build stage in current context");
  });

  it("suggests the instruction meant", () => {
    let err: unknown;
    try {
      parseDockerfileModel("FROM alpine\nRUN true\nCOPPY a b\n", { file: "build/Dockerfile" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DockerfileError);
    expect((err as DockerfileError).message).toBe("build/Dockerfile:3: unknown instruction: COPPY (did you mean COPY?)");
  });

  it("honours the escape directive", () => {
    const m = parseDockerfileModel("# escape=`\nFROM alpine\nWORKDIR C:\\`$X\n");
    expect(m.escapeToken).toBe("`");
    expect(expandInstruction(m.stages[0]!.instructions[0]!, () => "v", m.escapeToken).instruction).toMatchObject({
      path: "C:\\$X",
    });
  });

  it("HEALTHCHECK lines of BuildKit's health testfile, one by one", () => {
    const hc = (line: string): unknown => {
      try {
        return parseDockerfileModel(`FROM debian\n${line}\n`).stages[0]?.instructions[0];
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(hc("HEALTHCHECK")).toBe("Dockerfile:2: HEALTHCHECK requires at least one argument");
    expect(hc("HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet")).toMatchObject({
      health: { test: ["CMD-SHELL", "/app/check.sh --quiet"], interval: 5e9, timeout: 3e9, retries: 3 },
    });
    expect(hc("HEALTHCHECK CMD")).toBe("Dockerfile:2: Missing command after HEALTHCHECK CMD");
    expect(hc("HEALTHCHECK   CMD   a b")).toMatchObject({ health: { test: ["CMD-SHELL", "a b"] } });
    expect(hc('HEALTHCHECK --timeout=3s CMD ["foo"]')).toMatchObject({ health: { test: ["CMD", "foo"], timeout: 3e9 } });
    expect(hc("HEALTHCHECK CONNECT TCP 7000")).toBe('Dockerfile:2: Unknown type "CONNECT" in HEALTHCHECK (try CMD)');
    expect(hc('HEALTHCHECK --start-period=0s --start-interval=0s --interval=5s --timeout=0s --retries=0 CMD ["foo"]')).toMatchObject({
      health: { test: ["CMD", "foo"], interval: 5e9, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 },
    });
  });

  it("flag lines of BuildKit's flags testfile, one by one", () => {
    const one = (line: string): unknown => {
      try {
        return parseDockerfileModel(`FROM scratch\n${line}\n`).stages[0]?.instructions[0];
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(one("COPY foo /tmp/")).toMatchObject({ kind: "copy", sources: ["foo"], dest: "/tmp/" });
    expect(one("COPY --doit=true foo /tmp/")).toBe("Dockerfile:2: unknown flag: --doit");
    expect(one("COPY --doit=true -- foo /tmp/")).toBe("Dockerfile:2: unknown flag: --doit");
    expect(one("COPY -- foo /tmp/")).toMatchObject({ kind: "copy", sources: ["foo"] });
    expect(one('CMD --doit [ "a", "b" ]')).toBe("Dockerfile:2: unknown flag: --doit");
    expect(one("CMD --doit -- [ ]")).toBe("Dockerfile:2: unknown flag: --doit");
  });

  it("ONBUILD triggers keep their text and parsed child", () => {
    const m = parseDockerfileModel('FROM busybox\nONBUILD RUN ["echo", "test"]\nONBUILD COPY . /\n');
    expect(m.stages[0]?.instructions).toMatchObject([
      { kind: "onbuild", expression: 'RUN ["echo", "test"]', child: { kind: "run", command: ["echo", "test"], prependShell: false } },
      { kind: "onbuild", expression: "COPY . /", child: { kind: "copy", sources: ["."], dest: "/" } },
    ]);
  });
});
