// Runs a system tool (mount, cp, runc…) and resolves with its output, rejecting like util.promisify(execFile)
// does (the error carries stdout and stderr). A function rather than `promisify(execFile)` at module load:
// reading execFile loads node:child_process, which a fully cached build never needs (~5 ms of start-up).
import { execFile, type ExecFileOptions } from "node:child_process";

export interface ToolOutput {
  stdout: string;
  stderr: string;
}

export function runTool(cmd: string, args: readonly string[], opts: ExecFileOptions = {}): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...opts, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}
