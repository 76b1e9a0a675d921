#!/usr/bin/env node
// kiln's command line: dispatches to one module per command; errors print as one clear line.
import { buildCommand } from "./commands/build.js";
import { analyzeCmd, historyCmd, inspectCmd } from "./commands/images.js";
import { cacheCmd } from "./commands/cache.js";
import { pullCmd, pushCmd } from "./commands/transfer.js";
import { UsageError } from "./options.js";

const USAGE = `Usage: kiln COMMAND [OPTIONS]

Build OCI images from Dockerfiles, without a Docker daemon.

Commands:
  build     Build an image from a Dockerfile
  history   Show the history of an image (each step, its layer size)
  inspect   Show an image's config, manifest, diff IDs and layers (JSON)
  analyze   Show what each layer adds, changes and removes, and the bytes wasted
  pull      Download an image from a registry into the local store
  push      Upload an image from the local store to its registry
  cache     Disk use, prune, garbage collection and checks of the build cache

Run 'kiln COMMAND --help' for more information on a command.
`;

type Command = (argv: string[], io: { stdout: (s: string) => void; stderr: (s: string) => void; signal?: AbortSignal }) => Promise<number>;

const commands: Record<string, Command> = {
  build: buildCommand,
  history: historyCmd,
  inspect: inspectCmd,
  analyze: analyzeCmd,
  cache: cacheCmd,
  pull: pullCmd,
  push: pushCmd,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const io = { stdout: (s: string) => void process.stdout.write(s), stderr: (s: string) => void process.stderr.write(s) };
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(USAGE);
    return name === undefined ? 1 : 0;
  }
  const command = commands[name];
  if (!command) {
    io.stderr(`kiln: unknown command "${name}"\n\n${USAGE}`);
    return 1;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await command(rest, { ...io, signal: controller.signal });
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.stderr(`kiln ${name}: ${(err as Error).message}\n`);
      return 2;
    }
    io.stderr(`ERROR: ${(err as Error).message}\n`);
    if (process.env["KILN_DEBUG"]) io.stderr(`${(err as Error).stack}\n`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`ERROR: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  },
);
