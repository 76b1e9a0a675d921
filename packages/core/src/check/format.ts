// Human-readable output for `kiln build --check`, in the spirit of `docker build --check`:
// one block per finding, then a summary line.
import type { Finding } from "./finding.js";

export interface FormatOptions {
  /** The Dockerfile's name as the user gave it. */
  file: string;
  /** The Dockerfile's text: when given, the offending lines are quoted under each finding. */
  source?: string;
}

/** The finding's lines, numbered and marked like docker's `>>>` excerpts (at most 6 lines). */
function excerpt(sourceLines: readonly string[], range: Finding["range"]): string[] {
  const last = Math.min(range.endLine, range.startLine + 5, sourceLines.length);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = range.startLine; n <= last; n++) {
    out.push(`  ${String(n).padStart(width)} | >>> ${(sourceLines[n - 1] ?? "").replace(/\r$/, "")}`);
  }
  return out;
}

function lines(range: Finding["range"]): string {
  return range.endLine > range.startLine ? `${range.startLine}-${range.endLine}` : `${range.startLine}`;
}

export function formatFindings(findings: readonly Finding[], options: FormatOptions): string {
  const out: string[] = [];
  const sourceLines = options.source?.split("\n");
  for (const f of findings) {
    const level = f.severity === "error" ? "ERROR" : "WARNING";
    out.push(`${level}: ${f.rule} - ${options.file}:${lines(f.range)}`);
    out.push(f.message);
    if (sourceLines) out.push(...excerpt(sourceLines, f.range));
    const [first, ...rest] = f.fix.split("\n");
    out.push(`  fix: ${first ?? ""}`);
    for (const line of rest) out.push(`       ${line}`);
    if (f.url !== undefined) out.push(`  see: ${f.url}`);
    out.push("");
  }
  const errors = findings.filter((f) => f.severity === "error").length;
  if (findings.length === 0) out.push("Check complete, no warnings found.");
  else if (errors > 0) {
    out.push(`Check complete, ${findings.length} ${findings.length === 1 ? "problem" : "problems"} found (errors: check=error=true).`);
  } else {
    out.push(`Check complete, ${findings.length} ${findings.length === 1 ? "warning has" : "warnings have"} been found!`);
  }
  return out.join("\n") + "\n";
}
