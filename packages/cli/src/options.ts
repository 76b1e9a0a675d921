// Parsing of docker-style option values: `k=v,k2=v2` lists and `K=V` build args.
import { OUTPUT_COMPRESSIONS, type OutputCompression } from "@kiln/core";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** `type=oci,dest=out.tar` → { type: "oci", dest: "out.tar" }; quoted values may contain commas. */
export function parseCsvOptions(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of splitCsv(text)) {
    const eq = field.indexOf("=");
    if (eq < 0) out[field.trim().toLowerCase()] = "";
    else out[field.slice(0, eq).trim().toLowerCase()] = field.slice(eq + 1);
  }
  return out;
}

function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let current = "";
  let quote: string | null = null;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else current += ch;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ",") {
      fields.push(current);
      current = "";
    } else current += ch;
  }
  if (quote) throw new UsageError(`unterminated quote in "${text}"`);
  fields.push(current);
  return fields.filter((f) => f.length > 0);
}

/** `--build-arg K=V`, or `--build-arg K` which takes K from the environment (docker build does this). */
export function parseBuildArgs(values: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf("=");
    if (eq === 0) throw new UsageError(`invalid build arg "${value}": name is empty`);
    if (eq < 0) {
      const fromEnv = env[value];
      if (fromEnv !== undefined) out[value] = fromEnv;
    } else out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

/** `--label k=v` pairs. */
export function parseKeyValues(values: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid ${what} "${value}": expected KEY=VALUE`);
    out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

/** `compression=gzip|uncompressed` of an `--output` (BuildKit's option); undefined when absent (gzip). */
export function parseCompressionOption(value: string | undefined, where: string): OutputCompression | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if ((OUTPUT_COMPRESSIONS as readonly string[]).includes(v)) return v as OutputCompression;
  throw new UsageError(`${where}: unsupported compression "${value}" (supported: ${OUTPUT_COMPRESSIONS.join(", ")})`);
}
