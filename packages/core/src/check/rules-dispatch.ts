// Rules BuildKit runs while dispatching stages, with the ARG/ENV scopes of a real build: FROM
// arguments and platforms, undefined variables, secrets in ARG/ENV, relative WORKDIR, EXPOSE
// formats, shell-form CMD/ENTRYPOINT, repeated CMD/ENTRYPOINT/HEALTHCHECK, and the COPY/ADD
// source rules. Nothing is pulled: a stage on an external image has an unknown environment
// unless `imageEnv` supplies it; there, an undefined variable is only reported when it is a
// near miss of one the Dockerfile defines (a likely typo).
import { DockerfileError } from "../dockerfile/errors.js";
import { AUTOMATIC_PLATFORM_ARGS, GlobalArgScope, type StageEnv } from "../dockerfile/instruction-argscope.js";
import { InstructionError } from "../dockerfile/instruction-error.js";
import { expandInstruction } from "../dockerfile/instruction-expand.js";
import type { Instruction, StageInstruction } from "../dockerfile/instructions.js";
import { expandWord, ShellExpansionError, type EnvLookup } from "../dockerfile/shell-lexer.js";
import { suggest } from "../dockerfile/suggest.js";
import { InvalidReferenceError, parseReference } from "../image/reference.js";
import type { CheckContext, Entry, StageView } from "./context.js";
import { parsePlatformSpec } from "./platform.js";
import { checkAddInsteadOfCopy, checkIgnoredSources, ignoreMatcher } from "./rules-copy.js";
import { RULES } from "./rules.js";
import { splitShellCommands } from "./shell-commands.js";

/** Build args BuildKit never puts in the environment, so never reported as undefined. */
const NON_ENV_ARGS = new Set(["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"]);
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const SECRET = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const NOT_SECRET = /(?:_|^)(?:public|file|version)(?:_|$)/i;

interface StageState {
  env: StageEnv;
  /** False when the base image's environment is unknown: undefined variables can't be told. */
  known: boolean;
  workdirSet: boolean;
  shellSet: boolean;
  /** ARG names declared in this stage and its base stages (BuildKit's d.buildArgs). */
  declared: Set<string>;
}

const isExpansionError = (err: unknown): boolean =>
  err instanceof DockerfileError || err instanceof ShellExpansionError || err instanceof InstructionError;

/** Wraps a lookup to note the names that were asked for and not found. */
function recording(lookup: EnvLookup): { lookup: EnvLookup; unmatched: Set<string> } {
  const unmatched = new Set<string>();
  return {
    unmatched,
    lookup: (name) => {
      const v = lookup(name);
      if (v === undefined) unmatched.add(name);
      return v;
    },
  };
}

function envKeys(env: StageEnv): string[] {
  return env.runEnv().map((kv) => kv.slice(0, Math.max(0, kv.indexOf("="))) || kv);
}

export function checkDispatch(ctx: CheckContext): void {
  const buildArgs = ctx.buildArgs;
  const options = { buildArgs, escapeToken: ctx.escapeToken, file: ctx.file };
  let global: GlobalArgScope;
  try {
    global = GlobalArgScope.forModel(ctx.model, ctx.target === undefined ? options : { ...options, target: ctx.target });
  } catch (err) {
    if (isExpansionError(err)) return;
    throw err;
  }
  checkDefaultBaseImages(ctx);
  const matcher = ignoreMatcher(ctx.ignorePatterns);
  const fromKeys = [...new Set([...global.entries().map(([k]) => k), ...ctx.model.globalArgs.flatMap((a) => a.args.map((x) => x.key))])];
  const states: StageState[] = [];
  ctx.stages.forEach((view, index) => {
    const image = checkFrom(ctx, global, fromKeys, view);
    const baseIndex =
      image === undefined ? -1 : ctx.stages.findIndex((s, i) => i < index && s.stage.name === image.toLowerCase());
    const base = states[baseIndex];
    let state: StageState;
    if (base) {
      state = { ...base, env: global.newStage(base.env), declared: new Set(base.declared) };
    } else {
      const env = global.newStage();
      const imageEnv = image === "scratch" ? [] : image === undefined ? undefined : ctx.imageEnv?.(image);
      if (imageEnv) env.setImageEnv(imageEnv);
      if (imageEnv && env.get("PATH") === undefined) env.setEnv("PATH", DEFAULT_PATH);
      state = { env, known: imageEnv !== undefined, workdirSet: false, shellSet: false, declared: new Set() };
    }
    states[index] = state;
    dispatchStage(ctx, view, state, matcher);
  });
}

/** UndefinedArgInFrom, RedundantTargetPlatform, FromPlatformFlagConstDisallowed; returns the expanded base. */
function checkFrom(ctx: CheckContext, global: GlobalArgScope, keys: string[], view: StageView): string | undefined {
  const instr = view.from.instr;
  const comments = instr.comments;
  const undeclared = (unmatched: Set<string>): void => {
    for (const name of unmatched) {
      if (keys.includes(name)) continue;
      const hint = suggest(name, keys, true);
      ctx.collector.report({
        rule: RULES.UndefinedArgInFrom,
        range: instr.range,
        message: `FROM argument '${name}' is not declared${hint ? ` (did you mean ${hint}?)` : ""}`,
        fix: hint ? `Use $${hint}, or declare ARG ${name}=<default> before the first FROM.` : `Declare ARG ${name}=<default> before the first FROM.`,
        comments,
      });
    }
  };
  let image: string | undefined;
  try {
    const r = expandWord(instr.image, global.lookup(), { escapeToken: ctx.escapeToken });
    undeclared(r.unmatched);
    image = r.result;
  } catch (err) {
    if (!isExpansionError(err)) throw err;
  }
  if (instr.platform !== undefined) {
    try {
      const r = expandWord(instr.platform, global.lookup(), { escapeToken: ctx.escapeToken });
      undeclared(r.unmatched);
      if (r.matched.size === 1 && r.unmatched.size === 0 && r.matched.has("TARGETPLATFORM") && r.result === global.get("TARGETPLATFORM")) {
        ctx.collector.report({
          rule: RULES.RedundantTargetPlatform,
          range: instr.range,
          message: `Setting platform to predefined ${instr.platform} in FROM is redundant as this is the default behavior`,
          fix: `Drop --platform=${instr.platform}: stages are built for the target platform anyway.`,
          comments,
        });
      }
      const p = r.matched.size === 0 && r.unmatched.size === 0 ? parsePlatformSpec(r.result) : undefined;
      const name = instr.stageName ?? "";
      if (p && !name.includes(p.os) && !name.includes(p.architecture)) {
        ctx.collector.report({
          rule: RULES.FromPlatformFlagConstDisallowed,
          range: instr.range,
          message: `FROM --platform flag should not use constant value ${JSON.stringify(r.result)}`,
          fix: "Drop --platform (pass --platform to the build instead), use $BUILDPLATFORM for build tools, or name the stage after the platform (e.g. AS build-amd64).",
          comments,
        });
      }
    } catch (err) {
      if (!isExpansionError(err)) throw err;
    }
  }
  return image;
}

/** InvalidDefaultArgInFrom: base names must stay valid with the meta ARGs' defaults alone. */
function checkDefaultBaseImages(ctx: CheckContext): void {
  const automatic = new Map<string, string>();
  for (const key of AUTOMATIC_PLATFORM_ARGS) {
    const v = ctx.buildArgs.get(key);
    if (v !== undefined) automatic.set(key, v);
  }
  let scope: GlobalArgScope;
  try {
    scope = GlobalArgScope.forModel(ctx.model, { buildArgs: automatic, escapeToken: ctx.escapeToken, file: ctx.file });
  } catch (err) {
    if (isExpansionError(err)) return;
    throw err;
  }
  for (const { from } of ctx.stages) {
    let name: string;
    try {
      name = expandWord(from.instr.image, scope.lookup(), { escapeToken: ctx.escapeToken }).result;
    } catch (err) {
      if (isExpansionError(err)) return;
      throw err;
    }
    if (validImageName(name)) continue;
    ctx.collector.report({
      rule: RULES.InvalidDefaultArgInFrom,
      range: from.instr.range,
      message: `Default value for ARG ${from.instr.image} results in empty or invalid base image name`,
      fix: "Give the ARGs used in this FROM defaults that make a valid image name (e.g. ARG VERSION=latest), so the Dockerfile builds without --build-arg.",
      comments: from.instr.comments,
    });
  }
}

function validImageName(name: string): boolean {
  if (name === "" || /\s/.test(name)) return false;
  try {
    parseReference(name);
    return true;
  } catch (err) {
    if (err instanceof InvalidReferenceError) return false;
    throw err;
  }
}

function dispatchStage(
  ctx: CheckContext,
  view: StageView,
  state: StageState,
  matcher: ReturnType<typeof ignoreMatcher>,
): void {
  const once = new Map<string, Entry<StageInstruction>>();
  for (const entry of view.entries) {
    const instr = entry.instr;
    const comments = instr.comments;
    const rec = recording(state.env.lookup());
    const reportUnmatched = (): void => {
      const keys = envKeys(state.env);
      for (const name of rec.unmatched) {
        if (state.declared.has(name) || NON_ENV_ARGS.has(name)) continue;
        const hint = suggest(name, keys, true);
        // On an unknown base image only a near miss of a variable this Dockerfile defines is
        // reported: anything else may come from the image.
        if (!state.known && hint === undefined) continue;
        ctx.collector.report({
          rule: RULES.UndefinedVar,
          range: instr.range,
          message: `Usage of undefined variable '$${name}'${hint ? ` (did you mean $${hint}?)` : ""}`,
          fix: hint ? `Use $${hint}, or declare ARG ${name} (or ENV ${name}=...) before this line.` : `Declare ARG ${name} (or ENV ${name}=...) before this line, or remove $${name}.`,
          comments,
        });
      }
      rec.unmatched.clear();
    };

    if (instr.kind === "arg") {
      for (const arg of instr.args) {
        secret(ctx, "ARG", arg.key, instr);
        if (!ctx.buildArgs.has(arg.key) && arg.value !== undefined) {
          try {
            expandWord(arg.value, rec.lookup, { escapeToken: ctx.escapeToken });
          } catch (err) {
            if (!isExpansionError(err)) throw err;
          }
          reportUnmatched();
        }
        try {
          state.env.declareArg(arg, instr);
        } catch (err) {
          if (!isExpansionError(err)) throw err;
        }
        state.declared.add(arg.key);
      }
      continue;
    }
    if (instr.kind === "onbuild") continue;

    let expanded: Instruction;
    try {
      expanded = expandInstruction(instr, rec.lookup, ctx.escapeToken, { file: ctx.file }).instruction;
    } catch (err) {
      if (!isExpansionError(err)) throw err;
      reportUnmatched();
      continue;
    }
    // Values of unset variables are unknown when the base image's environment is.
    const unresolved = rec.unmatched.size > 0 && !state.known;
    reportUnmatched();

    switch (expanded.kind) {
      case "env":
        for (const p of expanded.env) {
          secret(ctx, "ENV", p.key, instr);
          state.env.setEnv(p.key, p.value);
        }
        break;
      case "workdir":
        if (!state.workdirSet && !expanded.path.startsWith("/")) {
          ctx.collector.report({
            rule: RULES.WorkdirRelativePath,
            range: instr.range,
            message: `Relative workdir ${JSON.stringify(expanded.path)} can have unexpected results if the base image changes`,
            fix: `Use an absolute path: WORKDIR /${expanded.path.replace(/^\.\//, "")} (or set an absolute WORKDIR first).`,
            comments,
          });
        }
        state.workdirSet = true;
        break;
      case "expose":
        for (const port of expanded.ports) exposeFormat(ctx, port, instr);
        break;
      case "cmd":
      case "entrypoint":
        repeated(ctx, once, entry);
        if (expanded.prependShell && !state.shellSet) jsonArgs(ctx, entry, expanded.command?.[0] ?? "");
        break;
      case "healthcheck":
        repeated(ctx, once, entry);
        break;
      case "shell":
        state.shellSet = true;
        break;
      case "copy":
        if (matcher && expanded.from === undefined) checkIgnoredSources(ctx, matcher, expanded);
        break;
      case "add":
        if (matcher) checkIgnoredSources(ctx, matcher, expanded);
        if (!unresolved) checkAddInsteadOfCopy(ctx, expanded);
        break;
      default:
        break;
    }
  }
}

function secret(ctx: CheckContext, instruction: "ARG" | "ENV", key: string, instr: StageInstruction): void {
  if (!SECRET.test(key) || NOT_SECRET.test(key)) return;
  const id = key.toLowerCase().replace(/[^a-z0-9_.-]/g, "_");
  ctx.collector.report({
    rule: RULES.SecretsUsedInArgOrEnv,
    range: instr.range,
    message: `Do not use ARG or ENV instructions for sensitive data (${instruction} ${JSON.stringify(key)})`,
    fix: `ARG and ENV values end up in the image config or history. Pass it as a build secret instead: RUN --mount=type=secret,id=${id},env=${key} <command> (and build with --secret id=${id},env=${key}).`,
    comments: instr.comments,
  });
}

function repeated(ctx: CheckContext, once: Map<string, Entry<StageInstruction>>, entry: Entry<StageInstruction>): void {
  const previous = once.get(entry.instr.kind);
  once.set(entry.instr.kind, entry);
  if (!previous) return;
  // Reported at the earlier instruction: that is the one the image ignores.
  ctx.collector.report({
    rule: RULES.MultipleInstructionsDisallowed,
    range: previous.instr.range,
    message: `Multiple ${entry.keyword} instructions should not be used in the same stage because only the last one will be used`,
    fix: `Delete this ${previous.keyword} (line ${previous.instr.range.startLine}); the one at line ${entry.instr.range.startLine} replaces it.`,
    comments: entry.instr.comments,
  });
}

function jsonArgs(ctx: CheckContext, entry: Entry<StageInstruction>, command: string): void {
  const commands = splitShellCommands(command);
  const simple = commands.length === 1 && !/[$*?~<>|&;()`\\]/.test(command);
  const argv = simple ? (commands[0] as string[]) : ["/bin/sh", "-c", command];
  const name = entry.keyword.toUpperCase();
  const json = `[${argv.map((a) => JSON.stringify(a)).join(", ")}]`;
  ctx.collector.report({
    rule: RULES.JSONArgsRecommended,
    range: entry.instr.range,
    message: `JSON arguments recommended for ${entry.keyword} to prevent unintended behavior related to OS signals`,
    fix: simple
      ? `Use the exec form: ${name} ${json}`
      : `Use the exec form so the process gets signals as PID 1: ${name} ${json} still wraps a shell; better, move the shell logic into a script and run ${name} ["/path/to/script"] with "exec" at its end.`,
    comments: entry.instr.comments,
  });
}

function exposeFormat(ctx: CheckContext, raw: string, instr: StageInstruction): void {
  const parts = raw.split(":");
  const n = parts.length;
  const container = parts[n - 1] as string;
  const ip = n > 2 ? parts.slice(0, n - 2).join(":") : "";
  const hostPort = n > 1 ? (parts[n - 2] as string) : "";
  const slash = container.indexOf("/");
  const proto = slash < 0 ? "" : container.slice(slash + 1);
  const port = slash < 0 ? container : container.slice(0, slash);
  if (proto !== proto.toLowerCase()) {
    ctx.collector.report({
      rule: RULES.ExposeProtoCasing,
      range: instr.range,
      message: `Defined protocol '${raw}' in EXPOSE instruction should be lowercase`,
      fix: `Write EXPOSE ${raw.slice(0, raw.length - proto.length)}${proto.toLowerCase()}`,
      comments: instr.comments,
    });
  }
  if (ip !== "" || hostPort !== "") {
    ctx.collector.report({
      rule: RULES.ExposeInvalidFormat,
      range: instr.range,
      message: `EXPOSE instruction should not define an IP address or host-port mapping, found '${raw}'`,
      fix: `Expose only the container port: EXPOSE ${port}${proto ? `/${proto.toLowerCase()}` : ""}; map host ports when running the container (-p).`,
      comments: instr.comments,
    });
  }
}
