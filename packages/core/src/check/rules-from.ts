// FROM lines checked against the global ARG scope: undeclared arguments, base names that are
// invalid with the ARG defaults alone, and --platform values that are redundant or constant.
import { DockerfileError } from "../dockerfile/errors.js";
import { AUTOMATIC_PLATFORM_ARGS, GlobalArgScope } from "../dockerfile/instruction-argscope.js";
import { InstructionError } from "../dockerfile/instruction-error.js";
import { expandWord, ShellExpansionError } from "../dockerfile/shell-lexer.js";
import { suggest } from "../dockerfile/suggest.js";
import { InvalidReferenceError, parseReference } from "../image/reference.js";
import type { CheckContext, StageView } from "./context.js";
import { parsePlatformSpec } from "./platform.js";
import { RULES } from "./rules.js";

/** Errors a build would raise while expanding: the checker skips the affected check instead. */
export const isExpansionError = (err: unknown): boolean =>
  err instanceof DockerfileError || err instanceof ShellExpansionError || err instanceof InstructionError;

/** UndefinedArgInFrom, RedundantTargetPlatform, FromPlatformFlagConstDisallowed; returns the expanded base. */
export function checkFrom(ctx: CheckContext, global: GlobalArgScope, keys: string[], view: StageView): string | undefined {
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
export function checkDefaultBaseImages(ctx: CheckContext): void {
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
