// `kiln build`: flags and output as `docker build` users expect.
import { parseArgs } from "node:util";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { build, checkDockerfile, describeMiss, formatFindings, parseCacheFromSpec, parseCacheToSpec, type BuildOptions, type OutputSpec, type BuildResult } from "@kiln/core";
import { loadIgnoreFile } from "@kiln/snapshot";
import { parseBuildArgs, parseCompressionOption, parseCsvOptions, parseKeyValues, UsageError } from "../options.js";
import { plainProgress } from "../progress/plain.js";
import { supportsTtyProgress, ttyProgress } from "../progress/tty.js";

export const BUILD_USAGE = `Usage: kiln build [OPTIONS] CONTEXT

Build an image from a Dockerfile and a build context directory.

Options:
  -t, --tag NAME            Name and optionally a tag (repeatable)
  -f, --file PATH           Dockerfile (default: CONTEXT/Dockerfile)
      --build-arg K=V       Set a build-time variable (repeatable; K alone takes it from the environment)
      --target STAGE        Build up to this stage
      --no-cache            Do not use the cache
  -o, --output SPEC         type=oci,dest=DIR|FILE.tar | type=docker,dest=FILE.tar | type=registry | type=image (repeatable);
                            add compression=gzip (default) | uncompressed for the layers written or pushed
      --cache-from SPEC     Import build cache: type=local,src=DIR | type=registry,ref=REG/REPO:TAG (repeatable)
      --cache-to SPEC       Export build cache: type=local,dest=DIR | type=registry,ref=…[,mode=min|max][,compression=gzip|uncompressed] (repeatable)
      --check               Check the Dockerfile (BuildKit's checks and kiln's cache advice) without building;
                            exit 1 when there are findings
      --push                Push the tags to their registries (same as --output type=registry)
      --pull                Check the registry for newer FROM images even if they are in the local store
      --metadata-file FILE  Write build result metadata (JSON)
      --progress MODE       auto | plain | tty | rawjson | quiet (default auto)
      --explain             Say why each rebuilt step missed the cache
      --platform OS/ARCH    Target platform (default: this machine's)
      --label K=V           Set a label on the image (repeatable)
      --store DIR           Store directory (default: $KILN_STORE, $XDG_CACHE_HOME/kiln, ~/.cache/kiln)
      --iidfile FILE        Write the image ID to the file
      --secret id=ID,src=FILE  Expose a secret file to RUN --mount=type=secret (never stored in the image)
      --network MODE        Network for RUN steps: host (default) | none
      --parallelism N       Independent stages built at once (default: number of cores)
      --executor NAME       What runs RUN steps: embedded (default, Linux namespaces) | runc
      --rootfs-driver NAME  RUN's root filesystem: auto (default) | overlay | copy
  -q, --quiet               Print only the image ID
`;

function parseOutput(spec: string): OutputSpec {
  const o = parseCsvOptions(spec.includes("=") ? spec : `type=local,dest=${spec}`);
  const type = o["type"];
  if (type === "image") return { type: "image" };
  const compression = parseCompressionOption(o["compression"], `--output ${spec}`);
  const c = compression !== undefined ? { compression } : {};
  if (type === "registry") return { type: "registry", ...c };
  const dest = o["dest"];
  if (!dest) throw new UsageError(`--output ${spec}: dest is required`);
  if (type === "oci") return o["tar"] === undefined ? { type: "oci", dest, ...c } : { type: "oci", dest, tar: o["tar"] !== "false", ...c };
  if (type === "docker") return { type: "docker", dest, ...c };
  throw new UsageError(`--output ${spec}: unsupported type "${type}" (supported: oci, docker, registry, image)`);
}

/** `--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt` (also `source=`, and `id` defaulting to the file name). */
function parseSecret(spec: string): { id: string; src: string } {
  const o = parseCsvOptions(spec);
  const src = o["src"] ?? o["source"];
  if (!src) throw new UsageError(`--secret ${spec}: src is required`);
  const id = o["id"] ?? path.basename(src);
  return { id, src: path.resolve(src) };
}

export async function buildCommand(argv: string[], io: { stdout: (s: string) => void; stderr: (s: string) => void; signal?: AbortSignal }): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      tag: { type: "string", short: "t", multiple: true },
      file: { type: "string", short: "f" },
      "build-arg": { type: "string", multiple: true },
      target: { type: "string" },
      "no-cache": { type: "boolean" },
      output: { type: "string", short: "o", multiple: true },
      "metadata-file": { type: "string" },
      progress: { type: "string" },
      explain: { type: "boolean" },
      platform: { type: "string" },
      label: { type: "string", multiple: true },
      store: { type: "string" },
      iidfile: { type: "string" },
      secret: { type: "string", multiple: true },
      push: { type: "boolean" },
      check: { type: "boolean" },
      "cache-from": { type: "string", multiple: true },
      "cache-to": { type: "string", multiple: true },
      pull: { type: "boolean" },
      network: { type: "string" },
      parallelism: { type: "string" },
      executor: { type: "string" },
      "rootfs-driver": { type: "string" },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout(BUILD_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`"kiln build" requires exactly 1 argument (the context directory)\n\n${BUILD_USAGE}`);
  const context = positionals[0]!;
  const progress = values.quiet ? "quiet" : (values.progress ?? "auto");
  if (!["auto", "plain", "tty", "rawjson", "quiet"].includes(progress)) throw new UsageError(`--progress: unknown mode "${progress}"`);

  const options: BuildOptions = {
    context,
    buildArgs: parseBuildArgs(values["build-arg"] ?? []),
    tags: values.tag ?? [],
    outputs: (values.output ?? []).map(parseOutput),
    labels: parseKeyValues(values.label ?? [], "label"),
  };
  if (values.file !== undefined) options.dockerfile = values.file === "-" ? values.file : path.resolve(values.file);
  if (values.target !== undefined) options.target = values.target;
  if (values["no-cache"]) options.noCache = true;
  if (values.platform !== undefined) options.platform = values.platform;
  if (values.store !== undefined) options.store = path.resolve(values.store);
  if (io.signal) options.signal = io.signal;
  if (values.push) options.outputs = [...(options.outputs ?? []), { type: "registry" }];
  if (values.pull) options.pull = true;
  if (values["cache-from"]) options.cacheFrom = values["cache-from"].map(parseCacheFromSpec);
  if (values["cache-to"]) options.cacheTo = values["cache-to"].map(parseCacheToSpec);
  if (values.secret) options.secrets = values.secret.map(parseSecret);
  if (values.network !== undefined) {
    if (values.network !== "host" && values.network !== "none" && values.network !== "default") throw new UsageError(`--network: unsupported mode "${values.network}" (host, none)`);
    options.network = values.network === "none" ? "none" : "host";
  }
  if (values.executor !== undefined) {
    if (values.executor !== "embedded" && values.executor !== "runc") throw new UsageError(`--executor: unknown "${values.executor}" (embedded, runc)`);
    options.executor = values.executor;
  }
  const driver = values["rootfs-driver"];
  if (driver !== undefined) {
    if (driver !== "auto" && driver !== "overlay" && driver !== "copy") throw new UsageError(`--rootfs-driver: unknown "${driver}" (auto, overlay, copy)`);
    options.rootfsDriver = driver;
  }
  if (values.parallelism !== undefined) {
    const n = Number(values.parallelism);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--parallelism must be a positive integer, got "${values.parallelism}"`);
    options.parallelism = n;
  }
  const epoch = process.env["SOURCE_DATE_EPOCH"];
  if (epoch !== undefined && epoch !== "") {
    if (!/^[0-9]+$/.test(epoch)) throw new UsageError(`SOURCE_DATE_EPOCH must be a number of seconds, got "${epoch}"`);
    options.sourceDateEpoch = Number(epoch);
  }

  if (values.check) return runCheck(options, io);

  const run = build(options);
  const mode = progress === "auto" ? (supportsTtyProgress() ? "tty" : "plain") : progress;
  let tty: ReturnType<typeof ttyProgress> | undefined;
  if (mode === "rawjson") run.onEvent((e) => io.stderr(`${JSON.stringify(e)}\n`));
  else if (mode === "tty") {
    const view = ttyProgress({ explain: values.explain ?? false, write: io.stderr });
    tty = view;
    run.onEvent((e) => view.onEvent(e));
  } else if (mode === "plain") {
    const onEvent = plainProgress({ explain: values.explain ?? false, write: (line) => io.stderr(`${line}\n`) });
    run.onEvent(onEvent);
  }
  let result: BuildResult;
  try {
    result = await run.result;
  } finally {
    // The final frame must be drawn before anything else reaches the terminal (errors included).
    tty?.stop();
  }
  if (values["metadata-file"]) await writeFile(values["metadata-file"], `${JSON.stringify(buildMetadata(result), null, 2)}\n`);
  if (values.iidfile) await writeFile(values.iidfile, result.imageId);
  if (progress === "quiet") io.stdout(`${result.imageId}\n`);
  else {
    for (const tag of result.tags) io.stderr(`naming to ${tag}\n`);
    io.stdout(`${result.imageId}\n`);
  }
  return 0;
}

/** `--check`: lint instead of building, as `docker build --check` (exit 1 on findings). */
async function runCheck(options: BuildOptions, io: { stdout: (s: string) => void }): Promise<number> {
  const contextDir = path.resolve(options.context);
  const dockerfile = options.dockerfile ?? path.join(contextDir, "Dockerfile");
  const source = await readFile(dockerfile, "utf8");
  const file = path.basename(dockerfile);
  const ignore = await loadIgnoreFile({ contextDir, dockerfile });
  const { findings } = checkDockerfile(source, {
    file,
    ignorePatterns: ignore.patterns,
    ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}),
    ...(options.target ? { target: options.target } : {}),
  });
  io.stdout(formatFindings(findings, { file, source }));
  return findings.length > 0 ? 1 : 0;
}

/** The --metadata-file document: BuildKit's keys plus kiln's per-step list. */
export function buildMetadata(result: BuildResult): Record<string, unknown> {
  const out: Record<string, unknown> = {
    "containerimage.digest": result.manifestDigest,
    "containerimage.config.digest": result.imageId,
    "containerimage.descriptor": result.image.manifestDescriptor,
    "kiln.build.steps": result.steps.map((s) => ({
      stage: s.stage,
      step: s.index,
      line: s.line,
      instruction: s.instruction,
      cached: s.cached,
      ...(s.miss ? { missReason: describeMiss(s.miss), miss: s.miss } : {}),
      cacheKey: s.cacheKey,
      ...(s.layer ? { layer: s.layer } : {}),
      durationMs: s.durationMs,
    })),
  };
  if (result.tags.length > 0) out["image.name"] = result.tags.join(",");
  return out;
}
