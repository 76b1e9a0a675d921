// Rules BuildKit runs while dispatching stages, with the ARG/ENV scopes of a real build: FROM
// arguments and platforms, undefined variables, secrets in ARG/ENV, relative WORKDIR, EXPOSE
// formats, shell-form CMD/ENTRYPOINT, repeated CMD/ENTRYPOINT/HEALTHCHECK, and the COPY/ADD
// source rules. Nothing is pulled: a stage on an external image has an unknown environment
// unless `imageEnv` supplies it; there, only undefined variables that cannot be the image's
// are reported (see reportableOnUnknownImage).
import { GlobalArgScope, type StageEnv } from "../dockerfile/instruction-argscope.js";
import { expandInstruction } from "../dockerfile/instruction-expand.js";
import type { Instruction, StageInstruction } from "../dockerfile/instructions.js";
import { expandWord, type EnvLookup } from "../dockerfile/shell-lexer.js";
import { suggest } from "../dockerfile/suggest.js";
import type { CheckContext, Entry, StageView } from "./context.js";
import { checkDefaultBaseImages, checkFrom, isExpansionError } from "./rules-from.js";
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
  /** ENV names this Dockerfile set in this stage and its base stages. */
  envSet: Set<string>;
}

const sameLetters = (a: string, b: string): boolean => [...a].sort().join("") === [...b].sort().join("");

/**
 * On a base image whose environment is unknown, an undefined name is reported only when it is
 * surely not the image's: it has lowercase letters (images define UPPER_CASE variables), it is a
 * near miss of a variable this Dockerfile defines, or it is PATH with letters swapped ($PAHT).
 * A near miss of PATH alone is not enough: $GOPATH is one.
 */
function reportableOnUnknownImage(name: string, hint: string | undefined, state: StageState): boolean {
  if (name !== name.toUpperCase()) return true;
  if (hint === undefined) return false;
  if (state.declared.has(hint) || state.envSet.has(hint)) return true;
  return hint === "PATH" && sameLetters(name, hint);
}

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
    const base = baseIndex >= 0 ? states[baseIndex] : undefined;
    let state: StageState;
    if (base) {
      state = { ...base, env: global.newStage(base.env), declared: new Set(base.declared), envSet: new Set(base.envSet) };
    } else {
      const env = global.newStage();
      const imageEnv = image === "scratch" ? [] : image === undefined ? undefined : ctx.imageEnv?.(image);
      if (imageEnv) env.setImageEnv(imageEnv);
      // BuildKit always gives a Linux stage a PATH.
      if (env.get("PATH") === undefined) env.setEnv("PATH", DEFAULT_PATH);
      state = {
        env,
        known: imageEnv !== undefined,
        workdirSet: false,
        shellSet: false,
        declared: new Set(),
        envSet: new Set(),
      };
    }
    states[index] = state;
    dispatchStage(ctx, view, state, matcher);
  });
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
        if (!state.known && !reportableOnUnknownImage(name, hint, state)) continue;
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
          state.envSet.add(p.key);
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
