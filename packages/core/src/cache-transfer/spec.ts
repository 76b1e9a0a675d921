// `--cache-to` / `--cache-from` values, as BuildKit spells them:
//   type=local,dest=DIR[,mode=min|max][,compression=gzip (default)|uncompressed]   (same options for type=registry,ref=…)
//   type=local,src=DIR                     type=registry,ref=REG/REPO:TAG      (or just REG/REPO:TAG)
import { parseReference } from "../image/reference.js";
import { OUTPUT_COMPRESSIONS, type OutputCompression } from "../output/compress-image.js";

export class CacheSpecError extends Error {
  override readonly name = "CacheSpecError";
}

/** min: the final stage's steps only; max: every step of every stage. */
export type CacheExportMode = "min" | "max";

/**
 * Uncompressed store layers are exported as their gzip forms (annotated with the uncompressed digest), as
 * BuildKit compresses cache layers by default; `compression=uncompressed` exports them as stored.
 */
export type CacheToSpec =
  | { type: "local"; dest: string; mode: CacheExportMode; compression?: OutputCompression }
  | { type: "registry"; ref: string; mode: CacheExportMode; compression?: OutputCompression };

export type CacheFromSpec = { type: "local"; src: string } | { type: "registry"; ref: string };

function fields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new CacheSpecError(`invalid cache option ${JSON.stringify(part)} in ${JSON.stringify(text)}: expected key=value`);
    const key = part.slice(0, eq).trim().toLowerCase();
    if (out.has(key)) throw new CacheSpecError(`duplicate cache option ${key} in ${JSON.stringify(text)}`);
    out.set(key, part.slice(eq + 1).trim());
  }
  return out;
}

function required(f: Map<string, string>, key: string, text: string): string {
  const v = f.get(key);
  if (v === undefined || v === "") throw new CacheSpecError(`${JSON.stringify(text)}: ${key}= is required`);
  return v;
}

function checkRef(ref: string): string {
  try {
    parseReference(ref);
  } catch (err) {
    throw new CacheSpecError(`invalid cache reference ${JSON.stringify(ref)}: ${(err as Error).message}`);
  }
  return ref;
}

function unknownKeys(f: Map<string, string>, allowed: string[], text: string): void {
  for (const k of f.keys()) if (!allowed.includes(k)) throw new CacheSpecError(`${JSON.stringify(text)}: unsupported cache option ${k}`);
}

export function parseCacheToSpec(text: string): CacheToSpec {
  if (!text.includes("=")) return { type: "registry", ref: checkRef(text.trim()), mode: "min" };
  const f = fields(text);
  const modeText = f.get("mode") ?? "min";
  if (modeText !== "min" && modeText !== "max") throw new CacheSpecError(`${JSON.stringify(text)}: mode must be min or max, got ${modeText}`);
  const mode: CacheExportMode = modeText;
  const compressionText = f.get("compression")?.toLowerCase();
  if (compressionText !== undefined && !(OUTPUT_COMPRESSIONS as readonly string[]).includes(compressionText)) {
    throw new CacheSpecError(`${JSON.stringify(text)}: compression must be ${OUTPUT_COMPRESSIONS.join(" or ")}, got ${compressionText}`);
  }
  const c = compressionText !== undefined ? { compression: compressionText as OutputCompression } : {};
  const type = f.get("type") ?? "registry";
  if (type === "local") {
    unknownKeys(f, ["type", "dest", "mode", "compression"], text);
    return { type, dest: required(f, "dest", text), mode, ...c };
  }
  if (type === "registry") {
    unknownKeys(f, ["type", "ref", "mode", "compression"], text);
    return { type, ref: checkRef(required(f, "ref", text)), mode, ...c };
  }
  throw new CacheSpecError(`${JSON.stringify(text)}: unsupported cache type ${type} (kiln supports local and registry)`);
}

export function parseCacheFromSpec(text: string): CacheFromSpec {
  if (!text.includes("=")) return { type: "registry", ref: checkRef(text.trim()) };
  const f = fields(text);
  const type = f.get("type") ?? "registry";
  if (type === "local") {
    unknownKeys(f, ["type", "src"], text);
    return { type, src: required(f, "src", text) };
  }
  if (type === "registry") {
    unknownKeys(f, ["type", "ref"], text);
    return { type, ref: checkRef(required(f, "ref", text)) };
  }
  throw new CacheSpecError(`${JSON.stringify(text)}: unsupported cache type ${type} (kiln supports local and registry)`);
}
