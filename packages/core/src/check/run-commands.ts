// The simple commands a RUN executes: its shell-form line (or exec-form argv) and, when the line
// only feeds a heredoc to a shell (`RUN <<EOF`, `RUN bash <<EOF`), the heredoc's script.
import type { RunInstruction } from "../dockerfile/instructions.js";
import { basename, commandsOfScript, effectiveCommands, type SimpleCommand } from "./shell-commands.js";

const SHELLS = new Set(["sh", "bash", "ash", "dash", "zsh", "ksh"]);

function feedsShell(commands: readonly SimpleCommand[]): boolean {
  if (commands.length === 0) return true;
  return commands.every((c) => SHELLS.has(basename(c[0] ?? "")) && c.slice(1).every((a) => a.startsWith("-")));
}

export function runCommands(run: RunInstruction): SimpleCommand[] {
  if (!run.prependShell) return effectiveCommands(run.command);
  const commands = commandsOfScript(run.command[0] ?? "");
  if (run.files.length === 0 || !feedsShell(commands)) return commands;
  return [...commands, ...run.files.flatMap((f) => commandsOfScript(f.chomp ? f.data.replace(/^\t+/gm, "") : f.data))];
}
