// `kiln cache du|prune|gc|check`: the store's disk use and its upkeep.
import { parseArgs } from "node:util";
import path from "node:path";
import { cacheCheckCommand, cacheDuCommand, cacheGcCommand, cachePruneCommand } from "@kiln/cache";
import { compareLastBuilds, formatComparison, openStore } from "@kiln/core";
import { UsageError } from "../options.js";

type Io = { stdout: (s: string) => void; stderr: (s: string) => void; signal?: AbortSignal };

export const CACHE_USAGE = `Usage: kiln cache COMMAND [OPTIONS]

Manage the build cache and the store.

Commands:
  du      Disk use per cache record (size, last use) and in total
  prune   Delete cache records, then the blobs nothing references any more
            --all                   every record (tagged images stay)
            --keep-storage SIZE     least recently used records first, until the store fits (e.g. 10GB)
            --filter until=DURATION only records unused for longer than this (e.g. 24h, 7d)
  gc      Delete blobs, unpacked layers and leftovers nothing references (records, tags, running builds)
  explain Compare the last two builds of a Dockerfile step by step: what changed and why steps missed
            kiln cache explain [-f Dockerfile] [--target STAGE] [--platform OS/ARCH] CONTEXT
  check   Verify every blob against its digest and every record's blobs; exit 1 on problems
            --repair                delete what is broken

Options:
      --store DIR   Store directory
  -v, --verbose     du: list every record
`;

export async function cacheCmd(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      all: { type: "boolean" },
      "keep-storage": { type: "string" },
      filter: { type: "string", multiple: true },
      repair: { type: "boolean" },
      file: { type: "string", short: "f" },
      target: { type: "string" },
      platform: { type: "string" },
      verbose: { type: "boolean", short: "v" },
      store: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const sub = positionals[0];
  if (values.help || sub === undefined) {
    io.stdout(CACHE_USAGE);
    return sub === undefined && !values.help ? 2 : 0;
  }
  const store = await openStore(values.store !== undefined ? path.resolve(values.store) : undefined);
  const signal = io.signal ? { signal: io.signal } : {};
  switch (sub) {
    case "du":
      io.stdout(await cacheDuCommand(store.blobs, { verbose: values.verbose ?? false, ...signal }));
      return 0;
    case "prune":
      io.stdout(
        await cachePruneCommand(store.blobs, {
          all: values.all ?? false,
          ...(values["keep-storage"] !== undefined ? { keepStorage: values["keep-storage"] } : {}),
          ...(values.filter ? { filters: values.filter } : {}),
        }),
      );
      return 0;
    case "gc":
      io.stdout(await cacheGcCommand(store.blobs, signal));
      return 0;
    case "explain": {
      const context = positionals[1];
      if (context === undefined) throw new UsageError(`"kiln cache explain" needs the build context\n\n${CACHE_USAGE}`);
      const comparison = await compareLastBuilds({
        context,
        store,
        ...(values.file !== undefined ? { dockerfile: path.resolve(values.file) } : {}),
        ...(values.target !== undefined ? { target: values.target } : {}),
        ...(values.platform !== undefined ? { platform: values.platform } : {}),
      });
      io.stdout(formatComparison(comparison));
      return 0;
    }
    case "check": {
      const { output, exitCode } = await cacheCheckCommand(store.blobs, { repair: values.repair ?? false, ...signal });
      io.stdout(output);
      return exitCode;
    }
    default:
      throw new UsageError(`unknown cache command "${sub}"\n\n${CACHE_USAGE}`);
  }
}
