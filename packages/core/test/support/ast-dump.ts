// Test-only: prints a syntax tree the way BuildKit's `Node.Dump()` does, so the parser can be
// compared with BuildKit's own `testfiles/*/result` files.

import type { DockerfileAst, InstructionNode } from "../../src/dockerfile/ast.js";
import { goQuote, goToLower, goTrimLeft, goTrimSpace } from "../../src/dockerfile/parser-text.js";

export function dumpNode(node: InstructionNode): string {
  // ONBUILD chains nest as (onbuild (onbuild (run ...))); built inside out, without recursion.
  const chain: InstructionNode[] = [];
  for (let n: InstructionNode | undefined = node; n; n = n.child) chain.push(n);
  let inner = "";
  for (let i = chain.length - 1; i >= 0; i--) {
    const n = chain[i] as InstructionNode;
    let head = goToLower(n.keyword);
    if (n.flags.length > 0) head += ` [${n.flags.map(goQuote).join(" ")}]`;
    let tail = "";
    if (n.child) tail = ` (${inner})`;
    else for (const arg of n.args) tail += ` ${goQuote(arg)}`;
    // Go trims the whole string; the tail always ends in `"` or `)`, so only the head's edges
    // can need trimming (trimming the long nested tail would make deep ONBUILD chains quadratic).
    const lead = goTrimLeft(head);
    inner = lead === "" ? goTrimLeft(tail) : tail === "" ? goTrimSpace(lead) : lead + tail;
  }
  return inner;
}

/** The whole tree: one `(...)` line per instruction, as BuildKit's dumper prints it. */
export function dumpAst(ast: DockerfileAst): string {
  return goTrimSpace(ast.nodes.map((n) => `(${dumpNode(n)})\n`).join(""));
}
