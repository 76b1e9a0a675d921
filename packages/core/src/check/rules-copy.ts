// COPY/ADD sources: files excluded by .dockerignore (BuildKit's CopyIgnoredFile) and ADD used
// where COPY does the job (kiln's AddInsteadOfCopy).
import { PatternMatcher, goClean } from "@kiln/snapshot";
import type { AddInstruction, CopyInstruction } from "../dockerfile/instructions.js";
import type { CheckContext } from "./context.js";
import { RULES } from "./rules.js";

const ROOT_PATTERNS = new Set(["*", "**", "**/*"]);

export function isUrl(src: string): boolean {
  return src.startsWith("http://") || src.startsWith("https://");
}

/** Git sources ADD understands: `git@host:repo`, `git://`, `ssh://`, `*.git` URLs. */
function isGitSource(src: string): boolean {
  return /^(git@|git:\/\/|ssh:\/\/)/.test(src) || (isUrl(src) && /\.git(#.*)?$/.test(src));
}

export function ignoreMatcher(patterns: readonly string[] | undefined): PatternMatcher | undefined {
  if (patterns === undefined || patterns.length === 0) return undefined;
  const matcher = PatternMatcher.from(patterns);
  // As BuildKit: with `!` exceptions, what is excluded cannot be told statically.
  return matcher.hasExceptions || matcher.isEmpty ? undefined : matcher;
}

/** `instr` is the expanded COPY (without --from) or ADD. */
export function checkIgnoredSources(
  ctx: CheckContext,
  matcher: PatternMatcher,
  instr: CopyInstruction | AddInstruction,
): void {
  const cmd = instr.kind === "add" ? "Add" : "Copy";
  for (const raw of instr.sources) {
    if (instr.kind === "add" && (isUrl(raw) || isGitSource(raw))) continue;
    const src = goClean(raw);
    if (src === "." || src === "/") {
      if (!matcher.patterns.some((p) => !p.exception && ROOT_PATTERNS.has(p.text))) continue;
    }
    // Sources are relative to the context root even when written with a leading slash.
    const rel = src.replace(/^\/+/, "") || ".";
    if (!matcher.matchesOrParentMatches(rel)) continue;
    ctx.collector.report({
      rule: RULES.CopyIgnoredFile,
      range: instr.range,
      message: `Attempting to ${cmd} file ${JSON.stringify(src)} that is excluded by .dockerignore`,
      fix: `Remove "${src}" from this ${cmd.toUpperCase()}, or stop excluding it in .dockerignore (add a "!${rel}" line).`,
      comments: instr.comments,
    });
  }
}

/** Names ADD may unpack: tar archives, possibly compressed (BuildKit detects them by content). */
const ARCHIVE = /\.(tar|tgz|taz|tbz|tbz2|tb2|txz|tlz|tzst|gz|bz2|xz|lz|lzma|zst|z)$/i;

/** `instr` is the expanded ADD. */
export function checkAddInsteadOfCopy(ctx: CheckContext, instr: AddInstruction): void {
  if (instr.checksum !== undefined || instr.keepGitDir !== undefined || instr.unpack !== undefined) return;
  for (const src of instr.sources) {
    // Remote sources, archives, and anything still unexpanded need ADD or can't be judged.
    if (isUrl(src) || isGitSource(src) || ARCHIVE.test(src) || src.includes("$")) return;
  }
  const what = instr.sources.length > 0 ? instr.sources.join(" ") : "its inline content";
  const copy = instr.original.replace(/^\s*ADD\b/i, "COPY");
  ctx.collector.report({
    rule: RULES.AddInsteadOfCopy,
    range: instr.range,
    message: `ADD of local ${instr.sources.length === 1 ? "path" : "paths"} ${what} that is not an archive or URL: COPY does the same with no surprises`,
    fix: `Use ${copy.split("\n")[0]}`,
    comments: instr.comments,
  });
}
