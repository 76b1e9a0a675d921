/** Untimed helper commands (setup, cache resets): run to completion, fail with the output tail. */
import { spawn } from "node:child_process";
import { BenchError } from "./errors.js";

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Inherit stdio (long installs show progress) instead of capturing. */
  inherit?: boolean;
  allowFailure?: boolean;
}

export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: opts.inherit ? "inherit" : ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.on("data", (b: Buffer) => (out += b.toString("utf8")));
    child.stderr?.on("data", (b: Buffer) => (err = (err + b.toString("utf8")).slice(-8000)));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0 || opts.allowFailure) resolve(out);
      else reject(new BenchError(`${[cmd, ...args].join(" ")} exited ${code}:\n${(err || out).trim().slice(-4000)}`));
    });
  });
}
