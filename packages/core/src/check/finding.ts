// Findings and the collector that applies the check configuration (skips, experimental rules,
// error promotion) as rules report them.
import type { SourceRange } from "../dockerfile/ast.js";
import { configForComments, type CheckConfig } from "./config.js";
import type { RuleInfo } from "./rules.js";

export interface Finding {
  rule: string;
  severity: "warning" | "error";
  message: string;
  range: { startLine: number; endLine: number };
  /** Concrete advice: what to change, with the corrected instruction where possible. */
  fix: string;
  url?: string;
}

export interface Report {
  rule: RuleInfo;
  range: SourceRange;
  message: string;
  fix: string;
  /** Comments right above the instruction: a `# check=` among them applies to this finding. */
  comments?: readonly string[];
}

export class FindingCollector {
  private readonly found: Finding[] = [];
  constructor(private readonly config: CheckConfig) {}

  report(r: Report): void {
    const config = r.comments && r.comments.length > 0 ? configForComments(this.config, r.comments) : this.config;
    const name = r.rule.name;
    if (r.rule.experimental) {
      if (!config.experimentalAll && !config.experimental.has(name)) return;
    } else if (config.skipAll || config.skip.has(name)) {
      return;
    }
    const finding: Finding = {
      rule: name,
      severity: config.error ? "error" : "warning",
      message: r.message,
      range: { startLine: r.range.startLine, endLine: r.range.endLine },
      fix: r.fix,
    };
    if (r.rule.url !== undefined) finding.url = r.rule.url;
    this.found.push(finding);
  }

  /** Findings ordered by line; rules reporting on the same line keep their reporting order. */
  findings(): Finding[] {
    return this.found
      .map((f, i) => ({ f, i }))
      .sort((a, b) => a.f.range.startLine - b.f.range.startLine || a.i - b.i)
      .map(({ f }) => f);
  }
}
