// `kiln inspect IMAGE`: the image as `docker inspect` (Docker 20.10's image JSON) shows it, plus what
// kiln knows beyond that under "Kiln": the manifest digest and each layer's descriptor.
import type { KilnStore } from "../engine/store.js";
import { openStore } from "../engine/store.js";
import { goJson } from "./go-json.js";
import type { OpenedImage } from "./image-source.js";
import type { LayerFigures } from "./layer-scan.js";
import { imageLayerFigures } from "./layer-sizes.js";
import { openImage, type OpenImageOptions } from "./open-image.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Docker's container.Config with its zero values, in its JSON field order (omitempty fields absent). */
const CONTAINER_CONFIG_DEFAULTS: [string, Json][] = [
  ["Hostname", ""],
  ["Domainname", ""],
  ["User", ""],
  ["AttachStdin", false],
  ["AttachStdout", false],
  ["AttachStderr", false],
  ["ExposedPorts", null],
  ["Tty", false],
  ["OpenStdin", false],
  ["StdinOnce", false],
  ["Env", null],
  ["Cmd", null],
  ["Healthcheck", null],
  ["ArgsEscaped", null],
  ["Image", ""],
  ["Volumes", null],
  ["WorkingDir", ""],
  ["Entrypoint", null],
  ["NetworkDisabled", null],
  ["MacAddress", null],
  ["OnBuild", null],
  ["Labels", null],
  ["StopSignal", null],
  ["StopTimeout", null],
  ["Shell", null],
];
const OMIT_EMPTY = new Set(["ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress", "StopSignal", "StopTimeout", "Shell"]);

function isEmpty(v: Json | undefined): boolean {
  return v === undefined || v === null || v === false || v === 0 || v === "" || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0);
}

/** The runtime config as Docker prints it: every field of its struct, image values over zero values. */
export function dockerContainerConfig(raw: unknown): Json {
  if (raw === undefined || raw === null) return null;
  const given = raw as Record<string, Json>;
  const out: Record<string, Json> = {};
  for (const [key, zero] of CONTAINER_CONFIG_DEFAULTS) {
    const value = given[key];
    if (OMIT_EMPTY.has(key)) {
      if (!isEmpty(value)) out[key] = value!;
    } else out[key] = value === undefined ? zero : value;
  }
  return out;
}

/** Go's RFC3339Nano rendering of a timestamp as stored: fractional trailing zeros dropped; zero time when absent. */
function dockerTime(ts: string | undefined): string {
  if (!ts) return "0001-01-01T00:00:00Z";
  return ts.replace(/\.(\d*?)0+(?=[Zz+-]|$)/, (_m, digits: string) => (digits ? `.${digits}` : ""));
}

export interface InspectOptions {
  /** Compute Size (streams every layer not yet in the size cache). Default: true except for docker:// images. */
  size?: boolean;
  store?: KilnStore;
  signal?: AbortSignal;
}

/** The `docker inspect` document for an opened image. `figures` are per-layer (omit to leave sizes null). */
export function inspectDocument(image: OpenedImage, figures?: readonly LayerFigures[]): Record<string, Json> {
  const raw = image.rawConfig as Record<string, Json | undefined>;
  const size = figures ? figures.reduce((sum, f) => sum + f.size, 0) : null;
  const doc: Record<string, Json> = {
    Id: image.id,
    RepoTags: image.repoTags,
    RepoDigests: image.repoDigests,
    Parent: "",
    // Docker falls back to the newest history entry's comment ("buildkit.dockerfile.v0").
    Comment: (typeof raw["comment"] === "string" && raw["comment"]) || (image.config.history?.at(-1)?.comment ?? ""),
    Created: dockerTime(image.config.created),
    Container: typeof raw["container"] === "string" ? raw["container"] : "",
    ContainerConfig: dockerContainerConfig(raw["container_config"] ?? {}),
    DockerVersion: typeof raw["docker_version"] === "string" ? raw["docker_version"] : "",
    Author: image.config.author ?? "",
    Config: dockerContainerConfig(raw["config"]),
    Architecture: image.config.architecture ?? "",
  };
  if (image.config.variant) doc["Variant"] = image.config.variant;
  doc["Os"] = image.config.os ?? "";
  if (image.config["os.version"]) doc["OsVersion"] = image.config["os.version"];
  doc["Size"] = size;
  doc["VirtualSize"] = size;
  doc["RootFS"] = { Type: image.config.rootfs.type ?? "layers", Layers: image.config.rootfs.diff_ids };
  doc["Metadata"] = { LastTagTime: image.lastTagTime ?? "0001-01-01T00:00:00Z" };
  const kiln: Record<string, Json> = { Source: image.kind };
  if (image.manifestDescriptor) {
    kiln["ManifestDigest"] = image.manifestDescriptor.digest;
    kiln["ManifestMediaType"] = image.manifestDescriptor.mediaType;
  } else kiln["ManifestDigest"] = null;
  kiln["Layers"] = image.layers.map((l, i) => {
    const layer: Record<string, Json> = { Digest: l.digest, DiffID: l.diffID, MediaType: l.mediaType, Size: l.size };
    const f = figures?.[i];
    if (f) {
      layer["UncompressedSize"] = f.tarSize;
      layer["DiskSize"] = f.size;
    }
    return layer;
  });
  doc["Kiln"] = kiln;
  return doc;
}

/** Opens and inspects one image. */
export async function inspectImage(spec: string, options: OpenImageOptions & InspectOptions = {}): Promise<Record<string, Json>> {
  const store = options.store ?? (await openStore());
  const image = await openImage(spec, { ...options, store });
  const wantSize = options.size ?? image.kind !== "registry";
  const figures = wantSize ? await imageLayerFigures(image, { store, ...(options.signal ? { signal: options.signal } : {}) }) : undefined;
  return inspectDocument(image, figures);
}

/** `kiln inspect IMAGE…`: a JSON array, indented like the docker CLI prints it. */
export async function inspectCommand(specs: string | readonly string[], options: OpenImageOptions & InspectOptions = {}): Promise<string> {
  const docs: Json[] = [];
  for (const spec of typeof specs === "string" ? [specs] : specs) docs.push(await inspectImage(spec, options));
  return `${goJson(docs, 4)}\n`;
}
