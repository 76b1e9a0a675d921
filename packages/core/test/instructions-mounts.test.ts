import { describe, expect, it } from "vitest";
import { DockerfileError } from "../src/dockerfile/errors.js";
import { InstructionError } from "../src/dockerfile/instruction-error.js";
import { csvFields } from "../src/dockerfile/instruction-csv.js";
import { parseRamBytes, parseRunMount } from "../src/dockerfile/instruction-mounts.js";
import { resolveRunMount } from "../src/dockerfile/instruction-mount-defaults.js";
import { parseInstruction } from "../src/dockerfile/instructions.js";
import { node } from "./instructions-helpers.js";

function mountError(spec: string): string {
  try {
    parseRunMount(spec);
  } catch (err) {
    expect(err).toBeInstanceOf(InstructionError);
    return (err as Error).message;
  }
  throw new Error(`${spec} was accepted`);
}

describe("RUN --mount", () => {
  it("defaults to a read-only bind mount", () => {
    expect(parseRunMount("target=/src")).toEqual({
      type: "bind",
      target: "/src",
      readOnly: true,
      sizeLimit: 0,
      required: false,
    });
    expect(parseRunMount("type=bind,from=builder,source=/out,dst=/in,rw")).toMatchObject({
      type: "bind",
      from: "builder",
      source: "/out",
      target: "/in",
      readOnly: false,
    });
  });
  it("cache mounts are writable and take id, sharing, mode, uid, gid", () => {
    expect(parseRunMount("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1000,gid=100")).toEqual({
      type: "cache",
      target: "/root/.cache",
      id: "go",
      sharing: "locked",
      mode: 0o755,
      uid: 1000,
      gid: 100,
      readOnly: false,
      sizeLimit: 0,
      required: false,
    });
    expect(parseRunMount("type=cache,target=/c,ro")).toMatchObject({ readOnly: true });
    expect(parseRunMount("type=cache,target=/c,readonly=false")).toMatchObject({ readOnly: false });
    expect(parseRunMount("TYPE=Cache,Target=/c,Sharing=PRIVATE")).toMatchObject({ type: "cache", sharing: "private" });
  });
  it("tmpfs takes a size", () => {
    expect(parseRunMount("type=tmpfs,target=/t,size=64m")).toMatchObject({ type: "tmpfs", sizeLimit: 64 * 1024 * 1024, readOnly: false });
    expect(parseRamBytes("1.5GiB")).toBe(1.5 * 1024 ** 3);
    expect(parseRamBytes("1024")).toBe(1024);
    expect(parseRamBytes("10 kb")).toBe(10240);
    expect(parseRamBytes("lots")).toBeUndefined();
    expect(mountError("type=tmpfs,target=/t,size=lots")).toBe("invalid value for size: lots");
    expect(mountError("type=bind,target=/t,size=1m")).toBe("unexpected key 'size' for mount type 'bind'");
  });
  it("secret and ssh mounts", () => {
    expect(parseRunMount("type=secret,id=npmrc,target=/root/.npmrc,required,mode=0440")).toMatchObject({
      type: "secret",
      id: "npmrc",
      target: "/root/.npmrc",
      required: true,
      readOnly: true,
      mode: 0o440,
    });
    expect(parseRunMount("type=secret,id=tok,env=TOKEN,required=false")).toMatchObject({ env: "TOKEN", required: false });
    expect(parseRunMount("type=ssh")).toMatchObject({ type: "ssh", readOnly: true, required: false });
    expect(parseRunMount("type=ssh,id=gh,required=true,uid=1")).toMatchObject({ id: "gh", required: true, uid: 1 });
    expect(mountError("type=secret")).toBe("invalid secret mount. one of source, target required");
    expect(mountError("type=secret,id=a,from=b")).toBe("secret mount should not have a from");
    expect(mountError("type=secret,id=a,sharing=shared")).toBe("secret mount should not define sharing");
    expect(mountError("type=secret,id=a,source=b")).toBe("both source and id can't be set");
  });
  it("rejects what BuildKit rejects", () => {
    expect(mountError("type=volume,target=/x")).toBe('unsupported mount type "volume"');
    expect(mountError("type=cahce,target=/x")).toBe('unsupported mount type "cahce" (did you mean cache?)');
    expect(mountError("type=cache,target=/x,sharing=exclusive")).toBe('unsupported sharing value "exclusive"');
    expect(mountError("type=cache,target=/x,sharing=lockd")).toBe('unsupported sharing value "lockd" (did you mean locked?)');
    expect(mountError("type=bind,target=/x,sharing=shared")).toBe("invalid cache sharing set for bind mount");
    expect(mountError("target=/x,required")).toBe("unexpected key 'required' for mount type 'bind'");
    expect(mountError("target=/x,required=true")).toBe("unexpected key 'required' for mount type 'bind'");
    expect(mountError("type=secret,id=x,required=maybe")).toBe("invalid value for required: maybe");
    expect(mountError("target=/x,ro=perhaps")).toBe("invalid value for ro: perhaps");
    expect(mountError("target=/x,mode=0644")).toBe('mode not allowed for "bind" type mounts');
    expect(mountError("type=tmpfs,target=/x,uid=1")).toBe('uid not allowed for "tmpfs" type mounts');
    expect(mountError("type=cache,target=/x,mode=999")).toBe("invalid value 999 for mode");
    expect(mountError("type=cache,target=/x,uid=-1")).toBe("invalid value -1 for uid");
    expect(mountError("type=cache,target=/x,gid=4294967296")).toBe("invalid value 4294967296 for gid");
    expect(mountError("target=/x,bogus")).toBe("invalid field 'bogus' must be a key=value pair");
    expect(mountError("target=/x,tagret=/y")).toBe("unexpected key 'tagret' in 'tagret=/y' (did you mean target?)");
  });
  it("reads CSV quoting like Go's encoding/csv", () => {
    expect(csvFields('type=bind,"target=/a,b",ro', "mounts")).toEqual(["type=bind", "target=/a,b", "ro"]);
    expect(csvFields('"a""b"', "mounts")).toEqual(['a"b']);
    expect(csvFields("", "mounts")).toEqual([]);
    expect(() => csvFields('target=/a"b', "mounts")).toThrow('bare " in non-quoted-field');
    expect(() => csvFields('"abc', "mounts")).toThrow('extraneous or missing " in quoted-field');
    expect(parseRunMount('type=bind,"target=/a,b"').target).toBe("/a,b");
  });
  it("is parsed on RUN, deferred when a value uses a variable", () => {
    const run = parseInstruction(
      node("run", ["make"], { flags: ["--mount=type=cache,target=/c", "--mount=type=secret,id=s"] }),
    );
    expect(run.kind === "run" && run.mounts?.map((m) => m.type)).toEqual(["cache", "secret"]);
    const deferred = parseInstruction(node("run", ["make"], { flags: ["--mount=type=cache,target=$DIR"] }));
    expect(deferred).toMatchObject({ mountSpecs: ["type=cache,target=$DIR"], mounts: undefined });
  });
  it("RUN rejects bad mounts and from= with variables, located", () => {
    const fail = (flags: string[]): DockerfileError => {
      try {
        parseInstruction(node("run", ["x"], { flags, line: 4 }));
      } catch (err) {
        return err as DockerfileError;
      }
      throw new Error("accepted");
    };
    expect(fail(["--mount=type=foo"]).message).toBe('Dockerfile:4: unsupported mount type "foo"');
    expect(fail(["--mount=from=$STAGE,target=/x"]).detail).toBe(
      "'from' doesn't support variable expansion, define alias stage instead",
    );
    // A trailing "$" is literal, as in BuildKit.
    expect(parseInstruction(node("run", ["x"], { flags: ["--mount=from=a$,target=/x"] }))).toMatchObject({ kind: "run" });
  });
});

describe("resolveRunMount (BuildKit's dispatch defaults)", () => {
  const resolve = (spec: string, workdir?: string) => resolveRunMount(parseRunMount(spec), workdir);
  it("cache: id from the target, shared, root-owned 0755", () => {
    expect(resolve("type=cache,target=/root/.cache/")).toEqual({
      type: "cache",
      target: "/root/.cache/",
      id: "/root/.cache",
      sharing: "shared",
      source: "/",
      readOnly: false,
      ownership: { uid: 0, gid: 0, mode: 0o755 },
    });
    expect(resolve("type=cache,target=pkg,from=base,source=cache/,uid=10,sharing=locked", "/work")).toMatchObject({
      target: "/work/pkg",
      id: "pkg",
      from: "base",
      source: "/cache",
      sharing: "locked",
      ownership: { uid: 10, gid: 0, mode: 0o755 },
    });
  });
  it("bind and tmpfs targets are made absolute; / is refused", () => {
    expect(resolve("target=src,source=./app", "/w")).toEqual({ type: "bind", target: "/w/src", source: "/app", readOnly: true });
    expect(resolve("type=tmpfs,target=/tmp,size=1k")).toEqual({ type: "tmpfs", target: "/tmp", sizeLimit: 1024 });
    expect(() => resolve("type=bind")).toThrow('invalid mount target "/"');
    expect(() => resolve("type=tmpfs,target=.", "/")).toThrow('invalid mount target "/"');
  });
  it("secret: id from source, id or target basename; default path under /run/secrets", () => {
    expect(resolve("type=secret,id=aws")).toEqual({ type: "secret", id: "aws", target: "/run/secrets/aws", required: false });
    expect(resolve("type=secret,target=/root/.npmrc")).toMatchObject({ id: ".npmrc", target: "/root/.npmrc" });
    expect(resolve("type=secret,id=tok,env=TOKEN")).toEqual({ type: "secret", id: "tok", env: "TOKEN", required: false });
    expect(resolve("type=secret,id=tok,uid=5")).toMatchObject({ ownership: { uid: 5, gid: 0, mode: 0o400 } });
  });
  it("ssh: default id, no source", () => {
    expect(resolve("type=ssh")).toEqual({ type: "ssh", id: "default", required: false });
    expect(resolve("type=ssh,mode=0666,target=/s")).toMatchObject({ target: "/s", ownership: { mode: 0o666 } });
    expect(() => resolve("type=ssh,source=x")).toThrow("ssh does not support source");
  });
});
