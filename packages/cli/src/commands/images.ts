// `kiln history`, `kiln inspect`, `kiln analyze`: look inside images in the store, OCI layouts,
// docker archives or registries.
import { parseArgs } from "node:util";
import path from "node:path";
import { analyzeCommand, historyCommand, inspectCommand, openStore, parsePlatform, type KilnStore } from "@kiln/core";
import { UsageError } from "../options.js";

type Io = { stdout: (s: string) => void; stderr: (s: string) => void; signal?: AbortSignal };

const SOURCES = `IMAGE is a name in the local store (app:1), an image ID, oci:DIR[:name], oci-archive:FILE[:name],
docker-archive:FILE[:name] or docker://registry/repo:tag.`;

async function storeFrom(dir: string | undefined): Promise<KilnStore> {
  return openStore(dir !== undefined ? path.resolve(dir) : undefined);
}

function format(value: string | undefined): "table" | "json" {
  if (value === undefined || value === "table") return "table";
  if (value === "json") return "json";
  throw new UsageError(`--format: unsupported "${value}" (table, json)`);
}

export const HISTORY_USAGE = `Usage: kiln history [OPTIONS] IMAGE

Show the history of an image: one row per step, newest first, with each layer's size.
${SOURCES}

Options:
      --no-trunc          Don't truncate output
      --format FORMAT     table (default) or json (one object per line)
  -H, --human BOOL        Human-readable sizes and dates (default true)
  -q, --quiet             Only show image IDs
      --platform OS/ARCH  Pick this platform from a multi-platform image
      --store DIR         Store directory
`;

export async function historyCmd(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "no-trunc": { type: "boolean" },
      format: { type: "string" },
      human: { type: "string", short: "H" },
      quiet: { type: "boolean", short: "q" },
      platform: { type: "string" },
      store: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return io.stdout(HISTORY_USAGE), 0;
  if (positionals.length !== 1) throw new UsageError(`"kiln history" requires exactly 1 argument\n\n${HISTORY_USAGE}`);
  const human = values.human === undefined ? true : !["false", "0", "no"].includes(values.human);
  io.stdout(
    await historyCommand(positionals[0]!, {
      store: await storeFrom(values.store),
      noTrunc: values["no-trunc"] ?? false,
      format: format(values.format),
      human,
      quiet: values.quiet ?? false,
      ...(values.platform ? { platform: parsePlatform(values.platform) } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
    }),
  );
  return 0;
}

export const INSPECT_USAGE = `Usage: kiln inspect [OPTIONS] IMAGE [IMAGE...]

Show an image's config, manifest, RootFS diff IDs and layer digests and sizes, as JSON.
${SOURCES}

Options:
      --size / --no-size  Compute the image size (default: yes, except for docker:// images)
      --platform OS/ARCH  Pick this platform from a multi-platform image
      --store DIR         Store directory
`;

export async function inspectCmd(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: "boolean" },
      "no-size": { type: "boolean" },
      platform: { type: "string" },
      store: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return io.stdout(INSPECT_USAGE), 0;
  if (positionals.length === 0) throw new UsageError(`"kiln inspect" requires at least 1 argument\n\n${INSPECT_USAGE}`);
  const size = values["no-size"] ? false : values.size ? true : undefined;
  io.stdout(
    await inspectCommand(positionals, {
      store: await storeFrom(values.store),
      ...(size !== undefined ? { size } : {}),
      ...(values.platform ? { platform: parsePlatform(values.platform) } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
    }),
  );
  return 0;
}

export const ANALYZE_USAGE = `Usage: kiln analyze [OPTIONS] IMAGE

Per layer: files added, changed and removed, and bytes; wasted bytes (files a later layer removed or
overwrote that an earlier layer still ships), an efficiency figure, and the largest files.
${SOURCES}

Options:
      --format FORMAT     table (default) or json
      --top N             How many largest/wasted files to list (default 10)
      --no-trunc          Don't truncate paths
      --platform OS/ARCH  Pick this platform from a multi-platform image
      --store DIR         Store directory
`;

export async function analyzeCmd(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      top: { type: "string" },
      "no-trunc": { type: "boolean" },
      platform: { type: "string" },
      store: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return io.stdout(ANALYZE_USAGE), 0;
  if (positionals.length !== 1) throw new UsageError(`"kiln analyze" requires exactly 1 argument\n\n${ANALYZE_USAGE}`);
  let top: number | undefined;
  if (values.top !== undefined) {
    top = Number(values.top);
    if (!Number.isInteger(top) || top < 0) throw new UsageError(`--top must be a whole number, got "${values.top}"`);
  }
  io.stdout(
    await analyzeCommand(positionals[0]!, {
      store: await storeFrom(values.store),
      format: format(values.format),
      noTrunc: values["no-trunc"] ?? false,
      ...(top !== undefined ? { top } : {}),
      ...(values.platform ? { platform: parsePlatform(values.platform) } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
    }),
  );
  return 0;
}
