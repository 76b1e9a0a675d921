// Rules that look at how instructions are written: keyword and stage-name casing, stage names,
// empty continuation lines, MAINTAINER, legacy `KEY value` pairs and description comments.
import type { CheckContext, Entry } from "./context.js";
import { RULES } from "./rules.js";

const RESERVED_STAGE_NAMES = new Set(["context", "scratch"]);

const isLower = (s: string): boolean => s === s.toLowerCase();
const isUpper = (s: string): boolean => s === s.toUpperCase();

export function checkEmptyContinuations(ctx: CheckContext): void {
  for (const w of ctx.model.ast.warnings) {
    if (!w.message.startsWith("Empty continuation line")) continue;
    ctx.collector.report({
      rule: RULES.NoEmptyContinuation,
      range: w.range,
      message: "Empty continuation line",
      fix: "Delete the empty line inside the continued instruction (or end the previous line without `\\`).",
    });
  }
}

export function checkFromSyntax(ctx: CheckContext): void {
  const seen = new Set<string>();
  for (const { from } of ctx.stages) {
    const { node, instr, keyword } = from;
    const comments = instr.comments;
    const as = node.args.length === 3 ? (node.args[1] as string) : undefined;
    const written = node.args.length === 3 ? (node.args[2] as string) : undefined;
    if (written !== undefined && !isLower(written)) {
      ctx.collector.report({
        rule: RULES.StageNameCasing,
        range: instr.range,
        message: `Stage name '${written}' should be lowercase`,
        fix: `Write the stage name in lowercase: ${keyword} ${node.args[0]} ${as} ${written.toLowerCase()}`,
        comments,
      });
    }
    if (as !== undefined && (isLower(keyword) || isUpper(keyword))) {
      const wanted = isLower(keyword) ? as.toLowerCase() : as.toUpperCase();
      if (as !== wanted) {
        ctx.collector.report({
          rule: RULES.FromAsCasing,
          range: instr.range,
          message: `'${as}' and '${keyword}' keywords' casing do not match`,
          fix: `Write '${wanted}' to match '${keyword}'.`,
          comments,
        });
      }
    }
    const name = instr.stageName;
    if (name === undefined) continue;
    if (RESERVED_STAGE_NAMES.has(name)) {
      ctx.collector.report({
        rule: RULES.ReservedStageName,
        range: instr.range,
        message: `Stage name should not use the same name as reserved stage ${JSON.stringify(name)}`,
        fix: `Rename the stage (e.g. "${name}-stage"): "${name}" already means something in FROM and COPY --from.`,
        comments,
      });
    }
    if (seen.has(name)) {
      ctx.collector.report({
        rule: RULES.DuplicateStageName,
        range: instr.range,
        message: `Duplicate stage name ${JSON.stringify(name)}, stage names should be unique`,
        fix: `Give this stage a name of its own; references to "${name}" resolve to the first stage with that name.`,
        comments,
      });
    }
    seen.add(name);
  }
}

export function checkInstructionCasing(ctx: CheckContext): void {
  // BuildKit counts the stages' FROMs and their instructions, not the meta ARGs.
  const entries: Entry[] = ctx.stages.flatMap((s): Entry[] => [s.from, ...s.entries]);
  let lower = 0;
  let upper = 0;
  for (const e of entries) {
    if (isLower(e.keyword)) lower++;
    else if (isUpper(e.keyword)) upper++;
  }
  const majorityLower = lower > upper;
  for (const e of entries) {
    const wrong = majorityLower ? !isLower(e.keyword) : !isUpper(e.keyword);
    if (!wrong) continue;
    const casing = majorityLower ? "lowercase" : "uppercase";
    const fixed = majorityLower ? e.keyword.toLowerCase() : e.keyword.toUpperCase();
    ctx.collector.report({
      rule: RULES.ConsistentInstructionCasing,
      range: e.instr.range,
      message: `Command '${e.keyword}' should match the case of the command majority (${casing})`,
      fix: `Write '${fixed}' like the other instructions.`,
      comments: e.instr.comments,
    });
  }
}

export function checkDeprecatedForms(ctx: CheckContext): void {
  const all: Entry[] = [...ctx.metaArgs, ...ctx.stages.flatMap((s): Entry[] => [s.from, ...s.entries])];
  for (const e of all) {
    const { instr } = e;
    if (instr.kind === "maintainer") {
      ctx.collector.report({
        rule: RULES.MaintainerDeprecated,
        range: instr.range,
        message: "Maintainer instruction is deprecated in favor of using label",
        fix: `Replace it with LABEL org.opencontainers.image.authors=${JSON.stringify(instr.maintainer)}`,
        comments: instr.comments,
      });
    }
    if (instr.kind === "env" || instr.kind === "label") {
      const name = e.keyword.toUpperCase();
      const pairs = instr.kind === "env" ? instr.env : instr.labels;
      for (const p of pairs) {
        if (!p.noDelim) continue;
        ctx.collector.report({
          rule: RULES.LegacyKeyValueFormat,
          range: instr.range,
          message: `"${e.keyword} key=value" should be used instead of legacy "${e.keyword} key value" format`,
          fix: `Write ${name} ${p.key}=${JSON.stringify(p.value)}`,
          comments: instr.comments,
        });
      }
    }
  }
}

/** Experimental in BuildKit: enabled with `# check=experimental=InvalidDefinitionDescription`. */
export function checkDefinitionDescriptions(ctx: CheckContext): void {
  const report = (instruction: string, keys: string[], e: Entry): void => {
    const comments = e.instr.comments;
    const last = comments[comments.length - 1];
    if (last === undefined || keys.length === 0) return;
    if (keys.includes(last.split(" ")[0] as string)) return;
    const example = keys.length > 1 ? "<arg_key>" : (keys[0] as string);
    ctx.collector.report({
      rule: RULES.InvalidDefinitionDescription,
      range: e.instr.range,
      message: `Comment for ${instruction} should follow the format: \`# ${example} <description>\``,
      fix: `Start the comment with "${example} ", or separate it from the instruction with an empty line.`,
      comments,
    });
  };
  const all: Entry[] = [...ctx.metaArgs, ...ctx.stages.flatMap((s): Entry[] => [s.from, ...s.entries])];
  for (const e of all) {
    if (e.instr.kind === "from" && e.instr.stageName !== undefined) report("FROM", [e.instr.stageName], e);
    if (e.instr.kind === "arg") report("ARG", e.instr.args.map((a) => a.key), e);
  }
}
