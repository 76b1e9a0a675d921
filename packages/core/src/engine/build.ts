// The build engine: runs the stages a target needs, step by step, against the cache; writes the image
// and its outputs. Library users call `build()` and read its events; the CLI is one such user.
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CacheKeyInputs } from "@kiln/cache";
import { BuildContext, mountOverlay, probeOverlay, unmount, type RootfsDriver } from "@kiln/snapshot";
import { parseDockerfile } from "../dockerfile/parser.js";
import { modelFromAst, findStage, type DockerfileModel, type Stage } from "../dockerfile/stages.js";
import { GlobalArgScope, type StageEnv } from "../dockerfile/instruction-argscope.js";
import { expandInstruction } from "../dockerfile/instruction-expand.js";
import { parseRunMount } from "../dockerfile/instruction-mounts.js";
import { parseInstructions, type AddInstruction, type CopyInstruction, type Instruction, type StageInstruction } from "../dockerfile/instructions.js";
import { DockerfileError } from "../dockerfile/errors.js";
import { ShellExpansionError } from "../dockerfile/shell-lexer.js";
import type { Digest, LayerDescriptor, Platform } from "../image/oci.js";
import { hostPlatform, parsePlatform } from "../image/oci.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { ImageArtifact } from "../output/image-artifact.js";
import { writeDockerArchive } from "../output/docker-archive.js";
import { writeOciLayoutDir, writeOciLayoutTar } from "../output/oci-layout.js";
import { OutputImages, addedBlobs, type OutputCompression } from "../output/compress-image.js";
import { resolveBaseImage, type ImagePuller, type ResolvedBase } from "./base-image.js";
import { stepCacheKey, canonicalJson, sha256Digest } from "./cache-key.js";
import { BuildOptionsError, BuildStepError } from "./errors.js";
import { EventQueue } from "./event-queue.js";
import type { BuildEvent, MissReason, StepRef } from "./events.js";
import { explainMiss } from "./explain.js";
import { ImageFsView } from "./fs-view.js";
import { addHistory, resolveWorkdir, scratchConfig, setLabel, setWorkdir } from "./image-config.js";
import { addLayer, cloneState, commitImage, type ImageState } from "./image-state.js";
import { openStore, type KilnStore } from "./store.js";
import { applyMetadata, type StageFlags } from "./steps/metadata.js";
import { planCopy, type CopySource } from "./steps/copy-plan.js";
import { changedContextFiles, resolveContextSources } from "./steps/copy.js";
import { preparePartsLayer, writePartsLayerToStore, type PreparedPartsLayer } from "./steps/layer-writer.js";
import { parseGroup, parsePasswd, resolveChown, resolveRunUser, type GroupEntry, type PasswdEntry } from "./users.js";
import { executeRun, runArgs, userDbLayers, type SecretSource } from "./steps/run.js";
import { UnpackedLayers } from "./unpacked-layers.js";
import { registryPuller } from "./registry-puller.js";
import { RegistryClient } from "../registry/client.js";
import { pushImage } from "../registry/push.js";
import { Lease, recordBlobs, withStepLock, type CacheRecord } from "@kiln/cache";
import { importCaches, exportCaches, cacheExportKeys } from "../cache-transfer/build-hooks.js";
import type { LazyBlobFetcher } from "../cache-transfer/lazy-fetcher.js";
import type { CacheFromSpec, CacheToSpec } from "../cache-transfer/spec.js";

export type OutputSpec =
  | { type: "oci"; dest: string; tar?: boolean; compression?: OutputCompression }
  | { type: "docker"; dest: string; compression?: OutputCompression }
  /** Push every tag to its registry (`--push`). */
  | { type: "registry"; compression?: OutputCompression }
  /** Only the local store (tags), which every build also updates. */
  | { type: "image" };

export interface BuildOptions {
  /** The build context directory. */
  context: string;
  /** The Dockerfile path (default `<context>/Dockerfile`); ignored when `dockerfileContent` is given. */
  dockerfile?: string;
  dockerfileContent?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  tags?: string[];
  outputs?: OutputSpec[];
  /** `os/arch[/variant]`; default the host's. */
  platform?: string;
  /** A store directory or an opened store; default $KILN_STORE, $XDG_CACHE_HOME/kiln or ~/.cache/kiln. */
  store?: string | KilnStore;
  /** Clamps file mtimes and sets every timestamp in the image (reproducible builds). */
  sourceDateEpoch?: number;
  /** Extra labels on the final image (`docker build --label`). */
  labels?: Record<string, string>;
  /** Where FROM images missing from the local store come from (default: their registry). */
  puller?: ImagePuller;
  /** Registry client for pulls and pushes (credentials, insecure registries); a default one otherwise. */
  registryClient?: RegistryClient;
  /** Re-resolve FROM images in the registry even if present locally. */
  pull?: boolean;
  /** Secrets for `RUN --mount=type=secret` (`--secret id=ID,src=FILE`); never stored in a layer or key. */
  secrets?: SecretSource[];
  /** RUN's root filesystem: "overlay", "copy" (no overlayfs needed), or "auto" (default: overlay if it mounts). */
  rootfsDriver?: RootfsDriver | "auto";
  /** What runs RUN commands: kiln's embedded namespaces launcher (default) or runc. */
  executor?: "embedded" | "runc";
  /** How many independent stages may build at once (default: the number of cores). */
  parallelism?: number;
  /** Network for RUN steps without `--network`: "host" (default) or "none". */
  network?: "host" | "none";
  cacheFrom?: CacheFromSpec[];
  cacheTo?: CacheToSpec[];
  signal?: AbortSignal;
}

export interface StepReport {
  stage: string;
  /** Other keys this step's result is recorded under (COPY --from by source identity), exported with it. */
  aliasKeys?: Digest[];
  index: number;
  instruction: string;
  line: number;
  cached: boolean;
  miss?: MissReason;
  cacheKey: Digest;
  layer?: { digest: Digest; diffID: Digest; size: number };
  durationMs: number;
}

export interface BuildResult {
  /** The image ID: digest of the config. */
  imageId: Digest;
  /** The manifest as the first oci/docker/registry output wrote it (gzip layers by default), else as stored. */
  manifestDigest: Digest;
  image: ImageArtifact;
  /** The manifest the local store's tags point to (layers as stored: locally built ones uncompressed). */
  storedManifestDigest: Digest;
  tags: string[];
  steps: StepReport[];
  /** One entry per pushed tag: blobs uploaded, mounted from another repository, or already there. */
  pushed: { tag: string; digest: Digest; uploaded: number; mounted: number; skipped: number }[];
  durationMs: number;
}

export interface BuildRun {
  /** Events as they happen; iterate it (or don't, at no cost). */
  readonly events: AsyncIterable<BuildEvent>;
  /** Synchronous listener for every event (progress output). */
  onEvent(listener: (event: BuildEvent) => void): void;
  readonly result: Promise<BuildResult>;
}

/** Starts a build. Events stream while it runs; `result` settles when it ends. */
export function build(options: BuildOptions): BuildRun {
  const queue = new EventQueue<BuildEvent>();
  const result = (async () => {
    await Promise.resolve(); // let the caller attach listeners first
    try {
      return await runBuild(options, (e) => queue.push(e));
    } finally {
      queue.close();
    }
  })();
  return {
    get events() {
      queue.startBuffering();
      return queue;
    },
    onEvent: (listener) => queue.listen(listener),
    result,
  };
}

interface StepRecordResult {
  layer?: LayerDescriptor;
  created: string;
  /** On a COPY --from record keyed by its source's identity: the content-based key the chain continues with. */
  chainKey?: Digest;
}

interface StageResult {
  stage: Stage;
  state: ImageState;
  key: Digest;
  env: StageEnv;
  flags: StageFlags;
}

const HISTORY_ID_PREFIX = "kiln.build.v1";

class BuildSession {
  readonly steps: StepReport[] = [];
  /** Step keys in Dockerfile order, described as "<stage>:<index> <instruction>" for the build history. */
  readonly stepKeys: { key: Digest; description: string; order: number }[] = [];
  readonly stagePromises = new Map<number, Promise<StageResult>>();
  private previousSteps = new Map<string, Digest>();
  private readonly mounts: (() => Promise<void>)[] = [];
  private readonly sourceFs = new Map<string, Promise<BuildContext>>();
  private readonly mountedImages = new Map<string, Promise<string>>();
  private contextPromise: Promise<BuildContext> | undefined;
  private readonly viewCache = new Map<string, Promise<ImageFsView>>();
  private readonly fileMapCache = new Map<string, Promise<string | undefined>>();
  readonly unpacked: UnpackedLayers;
  lease!: Lease;
  fetcher!: LazyBlobFetcher;

  constructor(
    readonly options: BuildOptions,
    readonly store: KilnStore,
    readonly model: DockerfileModel,
    readonly file: string,
    readonly contextDir: string,
    readonly dockerfilePath: string | undefined,
    readonly platform: Platform,
    readonly global: GlobalArgScope,
    readonly identity: string,
    readonly emit: (e: BuildEvent) => void,
  ) {
    this.unpacked = new UnpackedLayers(store.blobs, path.join(store.root, "layers"), (d, sig) => this.fetcher.ensureBlob(d, sig));
  }

  get signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  async loadPreviousBuild(): Promise<void> {
    for (const step of (await this.store.history.latest(this.identity))?.steps ?? []) {
      const id = step.description.split(" ", 1)[0]!;
      this.previousSteps.set(id, step.key);
    }
  }

  /**
   * The layer the previous build made at this step, so the chunked writer can reuse its unchanged
   * members (leased for the duration of the build).
   */
  async previousLayer(stepId: string): Promise<Digest | undefined> {
    const key = this.previousSteps.get(stepId);
    if (!key) return undefined;
    const digest = (await this.store.cache.get<StepRecordResult>(key))?.result.layer?.digest;
    if (digest) await this.lease.add([digest]);
    return digest;
  }

  recordStep(stepId: string, order: number, key: Digest, instruction: string): void {
    this.stepKeys.push({ key, description: `${stepId} ${instruction}`, order });
  }

  /**
   * A stage's or image's merged filesystem, mounted once per build (its unpacked layers stacked by a
   * read-only-in-use overlay); RUN --mount=from= binds from it directly.
   */
  mountImage(layers: LayerDescriptor[]): Promise<string> {
    const id = layers.map((l) => l.diffID).join(",");
    let dir = this.mountedImages.get(id);
    if (!dir) {
      dir = (async () => {
        const lowerDirs = await this.unpacked.lowerDirs(layers, this.signal);
        await mkdir(path.join(this.store.root, "run"), { recursive: true });
        const work = await mkdtemp(path.join(this.store.root, "run", "src-"));
        const target = path.join(work, "merged");
        await mountOverlay({ lowerDirs, upperDir: path.join(work, "upper"), workDir: path.join(work, "work"), target, ...(this.signal ? { signal: this.signal } : {}) });
        this.mounts.push(async () => {
          await unmount(target).catch(() => unmount(target, { lazy: true }));
          await rm(work, { recursive: true, force: true });
        });
        return target;
      })();
      this.mountedImages.set(id, dir);
    }
    return dir;
  }

  /** The files of a stage or image walked like a build context, ownership kept (for COPY --from). */
  imageSource(layers: LayerDescriptor[]): Promise<BuildContext> {
    const id = layers.map((l) => l.diffID).join(",");
    let ctx = this.sourceFs.get(id);
    if (!ctx) {
      ctx = this.mountImage(layers).then((dir) => BuildContext.open(dir, { ignorePatterns: [], ...(this.signal ? { signal: this.signal } : {}) }));
      this.sourceFs.set(id, ctx);
    }
    return ctx;
  }

  private driverPromise: Promise<RootfsDriver> | undefined;
  private readonly bases = new Map<string, Promise<ResolvedBase>>();

  /**
   * An image named by FROM or COPY --from, resolved once per build (with --pull, checked against its
   * registry once), so every stage that names it sees the same digest.
   */
  baseImage(name: string): Promise<ResolvedBase> {
    const key = formatReference(parseReference(name));
    let base = this.bases.get(key);
    if (!base) {
      base = resolveBaseImage(this.store, name, {
        platform: this.platform,
        ...(this.options.puller ? { puller: this.options.puller } : {}),
        ...(this.options.pull ? { pull: true } : {}),
        ...(this.signal ? { signal: this.signal } : {}),
      });
      this.bases.set(key, base);
    }
    return base;
  }

  /** The rootfs driver for RUN: as asked, or (auto) overlay when it mounts here, else copies. Probed once. */
  rootfsDriver(): Promise<RootfsDriver> {
    const wanted = this.options.rootfsDriver ?? "auto";
    if (wanted !== "auto") return Promise.resolve(wanted);
    this.driverPromise ??= (async () => {
      const dir = path.join(this.store.root, "run");
      await mkdir(dir, { recursive: true });
      return (await probeOverlay(dir)).ok ? "overlay" : "copy";
    })();
    return this.driverPromise;
  }

  async release(): Promise<void> {
    for (const m of this.mounts.splice(0)) await m().catch(() => undefined);
    await this.flushContext();
  }

  /** Saves the context's stat cache if a digest left it pending (only the next build's speed depends on it). */
  async flushContext(): Promise<void> {
    if (!this.contextPromise) return;
    const ctx = await this.contextPromise.catch(() => undefined);
    await ctx?.flushCaches();
  }

  context(): Promise<BuildContext> {
    this.contextPromise ??= BuildContext.open(this.contextDir, {
      ...(this.dockerfilePath ? { dockerfile: this.dockerfilePath } : {}),
      statCacheFile: path.join(this.store.root, "context-stat", `${sha256Digest(this.contextDir).slice(7, 39)}.statcache`),
      ...(this.signal ? { signal: this.signal } : {}),
    });
    return this.contextPromise;
  }

  /** The filesystem view of an image state (listing its layers once, cached by the top diffID). */
  view(state: ImageState): Promise<ImageFsView> {
    const id = state.layers.map((l) => l.diffID).join(",");
    let v = this.viewCache.get(id);
    if (!v) {
      v = ImageFsView.load(this.fetcher.blobReader(this.signal), state.layers, { cacheDir: path.join(this.store.root, "layer-listing"), ...(this.signal ? { signal: this.signal } : {}) });
      this.viewCache.set(id, v);
    }
    return v;
  }

  async userDb(state: ImageState): Promise<{ passwd?: PasswdEntry[]; groups?: GroupEntry[] }> {
    const view = await this.view(state);
    const passwd = await view.readFile("/etc/passwd", this.signal);
    const group = await view.readFile("/etc/group", this.signal);
    const out: { passwd?: PasswdEntry[]; groups?: GroupEntry[] } = {};
    if (passwd) out.passwd = parsePasswd(passwd.toString("utf8"));
    if (group) out.groups = parseGroup(group.toString("utf8"));
    return out;
  }

  /** The record the previous build of the same Dockerfile/target had at this position. */
  async previousInputs(stepId: string): Promise<{ inputs: CacheKeyInputs; files?: string } | undefined> {
    const prev = this.previousSteps.get(stepId);
    if (!prev) return undefined;
    const record = await this.store.cache.get<StepRecordResult>(prev);
    if (!record) return undefined;
    const files = await this.fileMap(record.inputs.filesIndex as Digest | undefined);
    return files ? { inputs: record.inputs, files } : { inputs: record.inputs };
  }

  /** A files index as its canonical JSON text (explainMiss compares two without parsing them). */
  fileMap(digest: Digest | undefined): Promise<string | undefined> {
    if (!digest) return Promise.resolve(undefined);
    let m = this.fileMapCache.get(digest);
    if (!m) {
      m = this.store.blobs.readBytes(digest).then((b) => b.toString("utf8"), () => undefined);
      this.fileMapCache.set(digest, m);
    }
    return m;
  }
}

function stepRef(stage: Stage, stageLabel: string, index: number, total: number, instr: Instruction): StepRef {
  return { id: `${stageLabel}/${index}`, stage: stageLabel, index, total, instruction: instr.original, line: instr.range.startLine };
}

function nowIso(epoch?: number): string {
  return new Date(epoch !== undefined ? epoch * 1000 : Date.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
}

async function runBuild(options: BuildOptions, emit: (e: BuildEvent) => void): Promise<BuildResult> {
  const started = Date.now();
  const contextDir = path.resolve(options.context);
  const dockerfilePath = options.dockerfileContent !== undefined ? undefined : path.resolve(options.dockerfile ?? path.join(contextDir, "Dockerfile"));
  const file = dockerfilePath ? path.basename(dockerfilePath) : "Dockerfile";
  let source: string;
  if (options.dockerfileContent !== undefined) source = options.dockerfileContent;
  else {
    try {
      source = await readFile(dockerfilePath!, "utf8");
    } catch (err) {
      throw new BuildOptionsError(`failed to read Dockerfile ${dockerfilePath}: ${(err as Error).message}`);
    }
  }
  const model = modelFromAst(parseDockerfile(source, { file }), { file });
  const platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
  const target = selectTarget(model, options.target, file);
  const store = typeof options.store === "object" ? options.store : await openStore(options.store);
  const global = GlobalArgScope.create(model.globalArgs, {
    buildArgs: options.buildArgs ?? {},
    targetPlatform: { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) },
    target: target.name ?? "",
    escapeToken: model.escapeToken,
    file,
  });
  const identity = buildIdentity(contextDir, dockerfilePath, target, platform);
  // FROM images missing from the local store come from their registry unless the caller says otherwise.
  const effective: BuildOptions = options.puller ? options : { ...options, puller: registryPuller(store, { client: options.registryClient ?? new RegistryClient() }) };
  const session = new BuildSession(effective, store, model, file, contextDir, dockerfilePath, platform, global, identity, emit);
  // The context walk is a rebuild's longest synchronous step: started now it overlaps the store and cache
  // I/O below instead of following it. Its errors still surface where a COPY/ADD uses the context.
  if (model.stages.some((s) => s.instructions.some(readsContext))) void session.context().catch(() => undefined);
  await session.loadPreviousBuild();
  session.lease = await Lease.acquire(store.blobs);
  try {
  const cacheClient = options.registryClient ?? new RegistryClient();
  const { fetcher, imports } = await importCaches(store, options.cacheFrom ?? [], { client: cacheClient, lease: session.lease, ...(options.signal ? { signal: options.signal } : {}) });
  // A cache that does not exist yet (the first CI run) is a warning, as in BuildKit, not an error.
  for (const i of imports) if (i.warning) emit({ type: "warning", message: i.warning });
  session.fetcher = fetcher;

  const needed = stagesNeeded(model, target, global, file);
  emit({ type: "build-start", dockerfile: dockerfilePath ?? "<inline>", context: contextDir, target: target.name ?? String(target.index), stages: needed.map((s) => s.name ?? String(s.index)) });

  let final: StageResult;
  try {
    final = await runStages(session, needed, target, options.parallelism ?? os.availableParallelism());
  } finally {
    await session.release();
  }
  session.stepKeys.sort((a, b) => a.order - b.order);
  const finalState = cloneState(final.state);
  for (const [k, v] of Object.entries(options.labels ?? {})) setLabel(finalState.config, k, v);
  const lastCreated = finalState.config.history?.at(-1)?.created;
  const image = await commitImage(finalState, store.blobs, options.sourceDateEpoch !== undefined ? nowIso(options.sourceDateEpoch) : lastCreated ?? nowIso());
  await session.lease.add([image.manifest.config.digest, image.manifestDescriptor.digest]);

  const tags = (options.tags ?? []).map((t) => formatReference(parseReference(t)));
  for (const tag of tags) await store.tags.set(tag, image.manifestDescriptor);
  await store.history.record(identity, session.stepKeys.map(({ key, description }) => ({ key, description })), options.signal ? { signal: options.signal } : {});

  const pushed: BuildResult["pushed"] = [];
  // Store layers may be uncompressed; outputs get gzip ones (BuildKit's default) unless compression=uncompressed.
  // The result describes the image as the first output wrote it (BuildKit's containerimage.digest), else as stored.
  let exported: ImageArtifact | undefined;
  const outputImages = new OutputImages(image, store.blobs, {
    ensureBlob: (d) => fetcher.ensureBlob(d, options.signal),
    isAvailable: (d) => fetcher.isAvailable(d),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  for (const out of options.outputs ?? []) {
    const t0 = Date.now();
    if (out.type === "image") continue;
    // Made (or found) once per compression, after the output's export-start so progress shows the wait.
    const outputImage = async (): Promise<ImageArtifact> => {
      const made = await outputImages.get(out.compression, out.type === "registry");
      await session.lease.add(addedBlobs(image, made));
      exported ??= made;
      return made;
    };
    if (out.type === "registry") {
      if (tags.length === 0) throw new BuildOptionsError("pushing needs at least one tag (-t registry/repo:tag)");
      const client = options.registryClient ?? new RegistryClient();
      for (const tag of tags) {
        emit({ type: "export-start", kind: "registry", dest: tag });
        const t1 = Date.now();
        const r = await pushImage(await outputImage(), fetcher.pushSource(options.signal), tag, { client, mountFrom: fetcher.mountHint, ...(options.signal ? { signal: options.signal } : {}) });
        pushed.push({ tag, digest: r.digest, uploaded: r.uploaded.length, mounted: r.mounted.length, skipped: r.skipped.length });
        emit({ type: "export-end", kind: "registry", dest: tag, durationMs: Date.now() - t1 });
      }
      continue;
    }
    emit({ type: "export-start", kind: out.type, dest: out.dest });
    // Layers known only from an imported cache are downloaded now that their bytes are needed.
    const outImage = await outputImage();
    await fetcher.ensureBlobs(outImage.manifest.layers.map((l) => l.digest), options.signal);
    const opts = { names: tags, ...(options.signal ? { signal: options.signal } : {}) };
    if (out.type === "docker") await writeDockerArchive(outImage, store.blobs, out.dest, opts);
    else if (out.tar ?? out.dest.endsWith(".tar")) await writeOciLayoutTar(outImage, store.blobs, out.dest, opts);
    else await writeOciLayoutDir(outImage, store.blobs, out.dest, opts);
    emit({ type: "export-end", kind: out.type, dest: out.dest, durationMs: Date.now() - t0 });
  }
  if (options.cacheTo?.length) {
    // mode=min exports the steps the final image is made of: the target stage and the stages it is built FROM.
    const finalLabels: string[] = [];
    for (let s: Stage | undefined = target; s; s = baseStage(model, s, global, file)) finalLabels.push(s.name ?? String(s.index));
    await exportCaches(store, options.cacheTo, cacheExportKeys(session.steps.flatMap((x) => [x.cacheKey, ...(x.aliasKeys ?? [])].map((cacheKey) => ({ stage: x.stage, cacheKey }))), finalLabels), { client: cacheClient, fetcher, lease: session.lease });
  }
  const durationMs = Date.now() - started;
  const reported = exported ?? image;
  emit({ type: "build-end", imageId: image.manifest.config.digest, manifestDigest: reported.manifestDescriptor.digest, durationMs });
  return { imageId: image.manifest.config.digest, manifestDigest: reported.manifestDescriptor.digest, image: reported, storedManifestDigest: image.manifestDescriptor.digest, tags, steps: session.steps, pushed, durationMs };
  } finally {
    await session.lease.release();
  }
}

/** Whether an instruction reads the build context (a COPY without --from, or an ADD). */
function readsContext(instr: StageInstruction): boolean {
  return (instr.kind === "copy" && instr.from === undefined) || instr.kind === "add";
}

/** What makes two builds "the same build" for explaining misses: context, Dockerfile, target, platform. */
export function buildIdentity(contextDir: string, dockerfilePath: string | undefined, target: Stage, platform: Platform): string {
  return `${HISTORY_ID_PREFIX}\0${contextDir}\0${dockerfilePath ?? "<inline>"}\0${target.name ?? target.index}\0${platform.os}/${platform.architecture}`;
}

export function selectTarget(model: DockerfileModel, target: string | undefined, file: string): Stage {
  if (target === undefined || target === "") return model.stages.at(-1)!;
  const stage = model.stages.find((s) => s.name === target.toLowerCase());
  if (!stage) throw new DockerfileError(file, undefined, `target stage "${target}" could not be found`);
  return stage;
}

/** The stages the target depends on (FROM <stage>, COPY --from=<stage>), in Dockerfile order. */
function stagesNeeded(model: DockerfileModel, target: Stage, global: GlobalArgScope, file: string): Stage[] {
  const needed = new Set<number>();
  const visit = (stage: Stage): void => {
    if (needed.has(stage.index)) return;
    needed.add(stage.index);
    const base = baseStage(model, stage, global, file);
    if (base) visit(base);
    for (const instr of stage.instructions) {
      for (const ref of stageRefsOf(instr)) {
        const dep = findStage(model.stages.slice(0, stage.index), ref);
        if (dep) visit(dep);
      }
    }
  };
  visit(target);
  return model.stages.filter((s) => needed.has(s.index));
}

/** What an instruction reads from other stages or images: COPY --from and RUN --mount=from=. */
function stageRefsOf(instr: StageInstruction): string[] {
  if (instr.kind === "copy") return instr.from !== undefined ? [instr.from] : [];
  if (instr.kind !== "run") return [];
  // `from=` cannot use variables (BuildKit refuses it), so the unexpanded specs are enough here.
  const mounts = instr.mounts ?? instr.mountSpecs.map((spec) => parseRunMount(spec));
  return mounts.flatMap((m) => (m.from !== undefined ? [m.from] : []));
}

/** Stages a stage waits for: its base stage and the stages it copies from. */
function stageDependencies(model: DockerfileModel, stage: Stage, global: GlobalArgScope, file: string): Stage[] {
  const deps: Stage[] = [];
  const base = baseStage(model, stage, global, file);
  if (base) deps.push(base);
  for (const instr of stage.instructions) {
    for (const ref of stageRefsOf(instr)) {
      const dep = findStage(model.stages.slice(0, stage.index), ref);
      if (dep && !deps.includes(dep)) deps.push(dep);
    }
  }
  return deps;
}

/**
 * Runs the needed stages, each as soon as the stages it depends on are done, at most `parallelism` at a
 * time; a stage used by several others runs once.
 */
async function runStages(session: BuildSession, needed: Stage[], target: Stage, parallelism: number): Promise<StageResult> {
  const { model, global, file } = session;
  let running = 0;
  const waiting: (() => void)[] = [];
  const acquire = async () => {
    if (running >= Math.max(1, parallelism)) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
  };
  const releaseSlot = () => {
    running--;
    waiting.shift()?.();
  };
  let order = 0;
  const orders = new Map<number, number>();
  for (const stage of needed) {
    orders.set(stage.index, order);
    order += 1000;
  }
  for (const stage of needed) {
    const deps = stageDependencies(model, stage, global, file);
    const promise = (async () => {
      await Promise.all(deps.map((d) => session.stagePromises.get(d.index)));
      await acquire();
      try {
        return await runStage(session, stage, orders.get(stage.index)!);
      } finally {
        releaseSlot();
      }
    })();
    promise.catch(() => undefined); // reported through the target's promise chain or below
    session.stagePromises.set(stage.index, promise);
  }
  // Every needed stage must succeed, not only the target's chain.
  const results = await Promise.all(needed.map((s) => session.stagePromises.get(s.index)!));
  return results[needed.indexOf(target)]!;
}

function expandedFromImage(stage: Stage, global: GlobalArgScope, file: string): string {
  try {
    return expandInstruction(stage.from, global.lookup(), global.escapeToken, { file }).instruction.image;
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new DockerfileError(file, stage.from.range, err.message);
    throw err;
  }
}

/** FROM names an earlier stage by its name only (an index would be an image called "0"). */
function baseStage(model: DockerfileModel, stage: Stage, global: GlobalArgScope, file: string): Stage | undefined {
  const image = expandedFromImage(stage, global, file).toLowerCase();
  return model.stages.slice(0, stage.index).find((s) => s.name === image);
}

async function runStage(session: BuildSession, stage: Stage, order: number): Promise<StageResult> {
  const { model, global, file, store } = session;
  const label = stage.name ?? String(stage.index);
  let total = stage.instructions.length + 1;
  const fromRef = stepRef(stage, label, 1, total, stage.from);
  session.emit({ type: "step-start", step: fromRef });
  const t0 = Date.now();

  let state: ImageState;
  let key: Digest;
  let env: StageEnv;
  let baseName: string;
  /** What the stage starts from, for explaining a changed base: a manifest digest, "scratch", or a stage's key. */
  let baseIdentity: string;
  const image = expandedFromImage(stage, global, file);
  const parentStage = baseStage(model, stage, global, file);
  if (parentStage) {
    const parent = await session.stagePromises.get(parentStage.index);
    if (!parent) throw new DockerfileError(file, stage.from.range, `stage ${image} is not built`);
    state = cloneState(parent.state);
    key = stepCacheKey({ parent: parent.key, instruction: `FROM ${image}`, buildArgs: {} });
    env = global.newStage(parent.env);
    baseName = `stage ${image}`;
    baseIdentity = parent.key;
  } else if (image.toLowerCase() === "scratch") {
    state = { config: scratchConfig(session.platform), layers: [] };
    key = stepCacheKey({ parent: null, instruction: "FROM scratch", buildArgs: {}, base: `scratch/${session.platform.os}/${session.platform.architecture}` });
    env = global.newStage();
    env.setImageEnv(state.config.config?.Env ?? []);
    baseName = "scratch";
    baseIdentity = "scratch";
  } else {
    let base;
    try {
      base = await session.baseImage(image);
    } catch (err) {
      throw new BuildStepError(file, fromRef, (err as Error).message, { cause: err });
    }
    await session.lease.add([...(base.manifestDigest ? [base.manifestDigest] : []), ...base.layers.flatMap((l) => [l.digest, l.diffID])]);
    const config = structuredClone(base.config);
    config.history ??= [];
    config.config ??= {};
    state = { config, layers: base.layers };
    key = stepCacheKey({ parent: null, instruction: `FROM ${base.name}`, buildArgs: {}, base: base.manifestDigest ?? base.name });
    env = global.newStage();
    env.setImageEnv(config.config?.Env ?? []);
    baseName = base.name;
    baseIdentity = base.manifestDigest ?? base.name;
  }
  const fromInputs: CacheKeyInputs = { instruction: `FROM ${baseName}`, buildArgs: {}, base: baseIdentity };
  const fromRecord = await store.cache.get(key);
  if (!fromRecord) await store.cache.put({ key, parent: null, inputs: fromInputs, result: { created: nowIso() }, blobs: state.layers.map((l) => l.digest) });
  session.recordStep(`${label}:1`, order, key, stage.from.original);
  // A FROM is never "built", but a base that moved since the last build is why everything after it misses.
  let baseMoved: MissReason | undefined;
  if (!parentStage) {
    const previous = await session.previousInputs(`${label}:1`);
    if (previous && previous.inputs.base !== undefined && previous.inputs.base !== baseIdentity) {
      baseMoved = { kind: "base-changed", previous: String(previous.inputs.base), current: baseIdentity };
    }
  }
  session.emit({ type: "step-end", step: fromRef, cached: !baseMoved, ...(baseMoved ? { miss: baseMoved } : {}), durationMs: Date.now() - t0, cacheKey: key });
  session.steps.push({ stage: label, index: 1, instruction: stage.from.original, line: stage.from.range.startLine, cached: !baseMoved, ...(baseMoved ? { miss: baseMoved } : {}), cacheKey: key, durationMs: Date.now() - t0 });

  // ONBUILD triggers of the base run first, as if written right after FROM; the image does not keep them.
  const triggers = onbuildTriggers(state.config.config?.OnBuild ?? [], file, stage);
  if (state.config.config?.OnBuild) delete state.config.config.OnBuild;
  const instructions: StageInstruction[] = [...triggers, ...stage.instructions];
  total = instructions.length + 1;

  const flags: StageFlags = { cmdSet: false };
  // Once a step misses, every later step is rebuilt (its parent key is new anyway); the reason says so.
  let missed = baseMoved !== undefined;
  for (let i = 0; i < instructions.length; i++) {
    session.signal?.throwIfAborted();
    const instr = instructions[i]!;
    const ref = stepRef(stage, label, i + 2, total, instr);
    session.emit({ type: "step-start", step: ref });
    const started = Date.now();
    try {
      const outcome = await runStep(session, { state, key, env, flags, instr, ref, missedBefore: missed, stepId: `${label}:${i + 2}`, stage });
      key = outcome.key;
      if (!outcome.cached) missed = true;
      const layer = outcome.layer ? { digest: outcome.layer.digest, diffID: outcome.layer.diffID, size: outcome.layer.size } : undefined;
      const durationMs = Date.now() - started;
      session.emit({ type: "step-end", step: ref, cached: outcome.cached, ...(outcome.miss ? { miss: outcome.miss } : {}), durationMs, cacheKey: key, layer, ...(outcome.parts ? { parts: outcome.parts } : {}) });
      const report: StepReport = { stage: label, index: i + 2, instruction: instr.original, line: instr.range.startLine, cached: outcome.cached, cacheKey: key, durationMs };
      if (outcome.miss) report.miss = outcome.miss;
      if (outcome.aliasKeys) report.aliasKeys = outcome.aliasKeys;
      if (layer) report.layer = layer;
      session.steps.push(report);
      session.recordStep(`${label}:${i + 2}`, order + i + 1, key, instr.original);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      session.emit({ type: "step-error", step: ref, message });
      if (err instanceof DockerfileError || err instanceof BuildStepError) throw err;
      if (err instanceof ShellExpansionError) throw new DockerfileError(file, instr.range, err.message);
      if ((err as Error)?.name === "AbortError") throw err;
      throw new BuildStepError(file, ref, message, { cause: err });
    }
  }
  return { stage, state, key, env, flags };
}

interface StepContext {
  state: ImageState;
  key: Digest;
  env: StageEnv;
  flags: StageFlags;
  instr: StageInstruction;
  ref: StepRef;
  missedBefore: boolean;
  /** "<stage>:<index>": the same position in the previous build explains a miss. */
  stepId: string;
  stage: Stage;
}

interface StepOutcome {
  key: Digest;
  aliasKeys?: Digest[];
  cached: boolean;
  miss?: MissReason;
  layer?: LayerDescriptor;
  parts?: { total: number; reused: number; written: number; speculated: boolean };
}

const sortedArgs = (args: { key: string; value: string }[]): Record<string, string> => Object.fromEntries(args.map((a) => [a.key, a.value]));

async function runStep(session: BuildSession, ctx: StepContext): Promise<StepOutcome> {
  const { state, env, flags, instr } = ctx;
  const { file } = session;
  const epoch = session.options.sourceDateEpoch;

  // 1. Expand the instruction and work out what the step's key depends on.
  let expanded: StageInstruction;
  let buildArgs: Record<string, string>;
  let historyText: string | undefined;
  if (instr.kind === "arg") {
    const declared = env.declareArgs(instr);
    expanded = instr;
    // An unset ARG counts as "" (as in RUN's |N K= history): setting it later reads as "changed".
    buildArgs = Object.fromEntries(declared.map((d) => [d.key, d.value ?? ""]));
    historyText = `ARG ${declared.map((d) => (d.value === undefined ? d.key : `${d.key}=${d.value}`)).join(" ")}`;
  } else {
    const ex = expandInstruction(instr, env.lookup(), session.global.escapeToken, { file });
    expanded = ex.instruction;
    buildArgs = sortedArgs(env.buildArgsAmong(ex.usedArgs));
  }

  // 2. Metadata instructions change the config only; they are cheap, so they are always applied.
  const metaConfig = structuredClone(state.config);
  const metaText = historyText === undefined ? applyMetadata(expanded, metaConfig, flags) : undefined;
  if (metaText !== undefined) {
    if (expanded.kind === "env") for (const e of expanded.env) env.setEnv(e.key, e.value);
  }

  const instructionKey = canonicalJson(stripLocation(expanded));
  const inputs: CacheKeyInputs = { instruction: expanded.original, buildArgs };
  let filesDigest: string | undefined;
  /** Per-path file digests of a COPY/ADD, read only on a miss. */
  let filesJson: (() => string) | undefined;
  /** Work that needs no layer bytes (explaining the miss, the per-path index): run while a large layer's diffID is hashed. */
  let whileHashing: (() => Promise<void>) | undefined;
  let copyLoad: (() => Promise<LayerDescriptor | undefined>) | undefined;
  let partsStats: StepOutcome["parts"];
  /** A COPY's speculation started while its sources were digested (used by copyLoad, cancelled otherwise). */
  let early: PreparedPartsLayer | undefined;
  /** COPY --from: the key by source identity, and a record found by it (which names the chain key). */
  let fastKey: Digest | undefined;
  let shortcut: { key: Digest; record: CacheRecord<StepRecordResult> } | undefined;

  if (expanded.kind === "copy" || expanded.kind === "add") {
    const copyInstr = expanded;
    let source: BuildContext | undefined;
    let preserveOwnership = false;
    if (copyInstr.kind === "copy" && copyInstr.from !== undefined) {
      const origin = await copyFromOrigin(session, ctx.stage, copyInstr.from);
      // Fast path: the same stage result (or image digest) copied the same way before. It needs neither the
      // stage's files nor their digests, so a host that imported the cache downloads nothing for it.
      fastKey = stepCacheKey({ parent: ctx.key, instruction: instructionKey, buildArgs, files: `from:${origin.identity}` });
      const fast = session.options.noCache ? undefined : await session.store.cache.get<StepRecordResult>(fastKey);
      if (fast?.result.chainKey && (!fast.result.layer || (await session.fetcher.isAvailable(fast.result.layer.digest)))) {
        shortcut = { key: fast.result.chainKey, record: fast };
      }
      source = shortcut ? undefined : await session.imageSource(origin.layers);
      preserveOwnership = true; // files from a stage or image keep their owners, as in BuildKit
    } else source = await session.context();
    const fixedMtimeMs = (epoch ?? 0) * 1000;
    const dest = absoluteDest(copyInstr.dest, state.config.config?.WorkingDir);
    // As soon as the edited files are known (before the rest of the digest, the cache lookup and the layer's
    // planning), start hashing the guessed new layer (see @kiln/snapshot part-speculation.ts). A context COPY
    // only; a cache hit cancels it.
    const afterReads =
      source && copyInstr.kind === "copy" && copyInstr.from === undefined
        ? async (): Promise<void> => {
            try {
              const changed = changedContextFiles(source!, copyInstr, dest, epoch !== undefined ? fixedMtimeMs : undefined);
              if (changed?.some((c) => c.type === "file")) early = await preparePartsLayer(session.store.blobs, await session.previousLayer(ctx.stepId), changed, epoch);
            } catch {
              // only an accelerator: a problem here shows up (or not) when the layer is written the usual way
            }
          }
        : undefined;
    const resolved = source ? await resolveContextSources(source, copyInstr, fixedMtimeMs, { preserveOwnership, ...(afterReads ? { afterReads } : {}) }) : undefined;
    if (resolved) {
      filesDigest = resolved.digest;
      filesJson = () => resolved.pathsJson();
    }
    if (resolved) copyLoad = async () => {
      // Before the (slow) planning: the previous layer's parts, and a guess at the new ones to start hashing.
      const prepared = early ?? (await preparePartsLayer(session.store.blobs, await session.previousLayer(ctx.stepId), changedContextFiles(source!, copyInstr, dest, epoch !== undefined ? fixedMtimeMs : undefined), epoch));
      early = undefined;
      const { sources, cleanup } = await resolved.load(session.signal).catch((err: unknown) => {
        prepared.speculation?.cancel();
        throw err;
      });
      try {
        const view = copyInstr.link ? ImageFsView.empty(session.store.blobs) : await session.view(state);
        let chown: { uid: number; gid: number } | undefined;
        if (copyInstr.chown !== undefined && copyInstr.chown !== "") {
          const db = /^[0-9]+(:[0-9]+)?$/.test(copyInstr.chown) ? {} : await session.userDb(state);
          chown = resolveChown(copyInstr.chown, db.passwd, db.groups);
        }
        const entries = planCopy({
          sources,
          dest,
          view,
          ...(chown ? { chown } : {}),
          ...(copyInstr.chmod !== undefined ? { chmod: parseChmod(copyInstr.chmod) } : {}),
          createdMtimeMs: epoch !== undefined ? fixedMtimeMs : newestMtime(sources),
        });
        return await writePartsLayerToStore(session.store.blobs, entries, {
          lease: session.lease,
          whileHashing: () => whileHashing?.(),
          prepared,
          onStats: (st) => {
            partsStats = { total: st.parts, reused: st.reusedParts, written: st.writtenParts, speculated: st.speculationUsed === true };
          },
          ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
          ...(session.signal ? { signal: session.signal } : {}),
        });
      } finally {
        prepared.speculation?.cancel();
        await cleanup();
      }
    };
  } else if (expanded.kind === "workdir") {
    const wd = resolveWorkdir(state.config.config?.WorkingDir, expanded.path);
    setWorkdir(metaConfig, wd);
    if (wd !== "/") {
      const user = state.config.config?.User;
      copyLoad = async () => {
        let chown: { uid: number; gid: number } | undefined;
        if (user) {
          const db = await session.userDb(state);
          chown = resolveChown(user, db.passwd, db.groups);
        }
        const entries = planCopy({ sources: [], dest: `${wd}/`, view: await session.view(state), ...(chown ? { chown } : {}), createdMtimeMs: (epoch ?? 0) * 1000 });
        return writePartsLayerToStore(session.store.blobs, entries, { lease: session.lease, ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}), ...(session.signal ? { signal: session.signal } : {}) });
      };
    }
    historyText = `WORKDIR ${wd}`;
  } else if (expanded.kind === "run") {
    const runInstr = expanded;
    // A RUN sees every ARG declared so far, so all of them are part of its key (and its history line).
    buildArgs = sortedArgs(env.usedBuildArgs());
    const args = runArgs(runInstr, state.config);
    historyText = `RUN ${[env.runHistoryPrefix(), ...args].filter((a) => a !== "").join(" ")}`;
    const runEnv = env.runEnv();
    copyLoad = async () => {
      // Earlier RUN layers that left /etc alone are skipped: a stage's RUNs share one user-database lookup.
      const db = await session.userDb({ ...state, layers: userDbLayers(state.layers) });
      const user = resolveRunUser(state.config.config?.User ?? "", db.passwd, db.groups);
      return executeRun({
        instr: runInstr,
        config: state.config,
        layers: state.layers,
        env: runEnv,
        user,
        unpacked: session.unpacked,
        blobs: session.store.blobs,
        workRoot: path.join(session.store.root, "run"),
        cacheMountRoot: path.join(session.store.root, "cache-mounts"),
        contextDir: session.contextDir,
        secrets: new Map((session.options.secrets ?? []).map((sec) => [sec.id, sec])),
        defaultNetwork: session.options.network ?? "host",
        driver: await session.rootfsDriver(),
        executor: session.options.executor ?? "embedded",
        resolveFrom: async (from) => session.mountImage((await copyFromOrigin(session, ctx.stage, from)).layers),
        ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
        onOutput: (stream, data) => session.emit({ type: "step-log", step: ctx.ref, stream, data }),
        ...(session.signal ? { signal: session.signal } : {}),
      });
    };
  }
  if (metaText !== undefined) historyText = metaText;

  if (filesDigest !== undefined) inputs.filesDigest = filesDigest;
  const key =
    shortcut?.key ??
    stepCacheKey({
      parent: ctx.key,
      instruction: instructionKey,
      buildArgs,
      ...(filesDigest !== undefined ? { files: filesDigest } : {}),
    });

  // 3. Cache lookup.
  const record = shortcut?.record ?? (session.options.noCache ? undefined : await session.store.cache.get<StepRecordResult>(key));
  let cached = record !== undefined;
  let layer: LayerDescriptor | undefined = record?.result.layer;
  if (record) await session.lease.add([...recordBlobs(record), ...(layer ? [layer.diffID] : [])]);
  if (layer && !(await session.fetcher.isAvailable(layer.digest))) {
    cached = false; // the record survived but its blob was pruned: rebuild
    layer = undefined;
  }
  let created = record?.result.created ?? nowIso();
  let miss: MissReason | undefined;
  // COPY --link makes a layer that does not depend on what is below it, so it is also cached by a key
  // without the parent: a rebuilt base does not force the copy again (BuildKit's rebase-friendly layers).
  const linkKey = linkLayerKey(expanded, instructionKey, buildArgs, filesDigest, state.config.config?.WorkingDir);
  if (!cached && linkKey && !session.options.noCache) {
    const linked = await session.store.cache.get<StepRecordResult>(linkKey);
    if (linked?.result.layer && (await session.store.blobs.has(linked.result.layer.digest))) {
      cached = true;
      layer = linked.result.layer;
      created = linked.result.created;
      await session.store.cache.put({ key, parent: ctx.key, inputs, result: { layer, created }, blobs: [layer.digest] });
    }
  }
  if (!cached) {
    if (session.options.noCache) miss = { kind: "no-cache" };
    else if (ctx.missedBefore) miss = { kind: "parent-changed" };
    // Why it missed, and the per-path index for explaining the next miss, need no layer bytes: they run while a
    // large COPY layer's diffID is hashed on the worker thread (whileHashing), or after the layer otherwise.
    let explaining: Promise<MissReason> | undefined;
    let indexing: Promise<Digest> | undefined;
    let sideWork: Promise<void> | undefined;
    const explainNeeded = !miss;
    const runSideWork = (): Promise<void> =>
      (sideWork ??= (async () => {
        if (explainNeeded) {
          explaining = session.previousInputs(ctx.stepId).then((prev) => explainMiss(inputs, prev?.inputs, prev?.files, filesJson?.()));
          explaining.catch(() => undefined);
        }
        await session.flushContext();
        if (filesJson) {
          const bytes = filesJson();
          await session.lease.add([sha256Digest(bytes)]);
          indexing = session.store.blobs.writeBytes(bytes).then((r) => r.digest);
          indexing.catch(() => undefined);
        }
      })());
    whileHashing = runSideWork;
    // One builder per step across processes sharing the store: a concurrent build of the same step
    // waits here and then takes the first one's record instead of doing the work again.
    const built = await withStepLock(session.store.blobs, key, async () => {
      const again = session.options.noCache ? undefined : await session.store.cache.get<StepRecordResult>(key);
      if (again && (!again.result.layer || (await session.fetcher.isAvailable(again.result.layer.digest)))) {
        await session.lease.add([...recordBlobs(again), ...(again.result.layer ? [again.result.layer.diffID] : [])]);
        return { ...again.result, reused: true };
      }
      const createdNow = nowIso();
      const made = copyLoad ? await copyLoad() : undefined;
      if (made) await session.lease.add([made.digest, made.diffID]);
      await runSideWork();
      const filesIndex: Digest | undefined = await indexing;
      const recordInputs: CacheKeyInputs = filesIndex ? { ...inputs, filesIndex } : inputs;
      const result: StepRecordResult = made ? { layer: made, created: createdNow } : { created: createdNow };
      await session.store.cache.put({ key, parent: ctx.key, inputs: recordInputs, result, blobs: made ? [made.digest] : [] });
      if (linkKey) await session.store.cache.put({ key: linkKey, parent: null, inputs: recordInputs, result, blobs: made ? [made.digest] : [] });
      return { ...result, reused: false };
    }, session.signal ? { signal: session.signal } : {});
    layer = built.layer;
    created = built.created;
    await runSideWork();
    if (explaining) miss = await explaining;
    if (built.reused) {
      // Another build did this step while we waited for it: a hit after all.
      cached = true;
      miss = undefined;
    }
  } else {
    await session.store.cache.touch(shortcut ? fastKey! : key);
  }
  if (fastKey && !shortcut && layer) {
    await session.store.cache.put({ key: fastKey, parent: ctx.key, inputs, result: { layer, created, chainKey: key }, blobs: [layer.digest] });
  }

  // 4. Apply the step to the state.
  const historyCreated = epoch !== undefined ? nowIso(epoch) : created;
  state.config = metaConfig;
  if (layer) {
    addLayer(state, layer);
    const text =
      expanded.kind === "copy" || expanded.kind === "add"
        ? `${copyHistoryText(expanded)} # buildkit`
        : expanded.kind === "run"
          ? `${historyText} # buildkit`
          : historyText ?? expanded.original;
    addHistory(state.config, { createdBy: text, emptyLayer: false, created: historyCreated });
  } else if (historyText !== undefined && historyText !== "") {
    addHistory(state.config, { createdBy: historyText, emptyLayer: true, created: historyCreated });
  }
  // A speculation nobody took (the step was a cache hit): stop its hashing.
  early?.speculation?.cancel();
  const outcome: StepOutcome = { key, cached };
  if (partsStats) outcome.parts = partsStats;
  if (fastKey && layer) outcome.aliasKeys = [fastKey];
  if (miss) outcome.miss = miss;
  if (layer) outcome.layer = layer;
  return outcome;
}

/**
 * Directories a COPY creates get the newest mtime of what it copies (not the wall clock), so the same
 * inputs give the same layer bytes on every rebuild; SOURCE_DATE_EPOCH overrides it.
 */
function newestMtime(sources: CopySource[]): number {
  let newest = 0;
  for (const s of sources) {
    newest = Math.max(newest, s.node.mtimeMs);
    for (const c of s.children ?? []) newest = Math.max(newest, c.node.mtimeMs);
  }
  return newest;
}

/** What a `COPY --from` (or `--mount=from=`) reads: an earlier stage (by name or index) or an image, and its identity. */
async function copyFromOrigin(session: BuildSession, stage: Stage, from: string): Promise<{ layers: LayerDescriptor[]; identity: string }> {
  const dep = findStage(session.model.stages.slice(0, stage.index), from);
  if (dep) {
    const result = await session.stagePromises.get(dep.index);
    if (!result) throw new Error(`stage ${from} is not part of this build`);
    return { layers: result.state.layers, identity: `stage:${result.key}` };
  }
  if (/^[0-9]+$/.test(from)) throw new Error(`invalid stage index ${from}: only earlier stages can be copied from`);
  const base = await session.baseImage(from);
  return { layers: base.layers, identity: `image:${base.manifestDigest ?? base.name}` };
}

/** Parses a base image's ONBUILD triggers into instructions (BuildKit refuses ONBUILD, FROM and MAINTAINER there). */
function onbuildTriggers(triggers: string[], file: string, stage: Stage): StageInstruction[] {
  const out: StageInstruction[] = [];
  for (const trigger of triggers) {
    const ast = parseDockerfile(trigger, { file });
    for (const instr of parseInstructions(ast, { file })) {
      if (instr.kind === "onbuild" || instr.kind === "from" || instr.kind === "maintainer") {
        throw new DockerfileError(file, stage.from.range, `${instr.kind.toUpperCase()} isn't allowed as an ONBUILD trigger`);
      }
      // Triggers are reported at the FROM line that brought them in.
      out.push({ ...instr, range: stage.from.range });
    }
  }
  return out;
}

/**
 * The parent-independent key of a `COPY --link` layer, or undefined when the copy cannot be linked
 * (BuildKit links only without --chmod; a --chown by name depends on the base's /etc/passwd).
 */
function linkLayerKey(instr: StageInstruction, instructionKey: string, buildArgs: Record<string, string>, files: string | undefined, workdir: string | undefined): Digest | undefined {
  if ((instr.kind !== "copy" && instr.kind !== "add") || !instr.link || files === undefined) return undefined;
  if (instr.chmod !== undefined) return undefined;
  if (instr.chown !== undefined && !/^[0-9]+(:[0-9]+)?$/.test(instr.chown)) return undefined;
  return stepCacheKey({ parent: null, instruction: instructionKey, buildArgs, files, extra: { link: "1", workdir: workdir ?? "/" } });
}

/** BuildKit's history text for COPY/ADD: the keyword, --parents/--chown/--chmod, sources, destination. */
function copyHistoryText(instr: CopyInstruction | AddInstruction): string {
  const parts: string[] = [instr.kind === "add" ? "ADD" : "COPY"];
  if (instr.kind === "copy" && instr.parents) parts.push("--parents");
  if (instr.chown) parts.push(`--chown=${instr.chown}`);
  if (instr.chmod) parts.push(`--chmod=${instr.chmod}`);
  parts.push(...instr.sources, ...instr.contents.map((c) => `<<${c.path}`), instr.dest);
  return parts.join(" ");
}

/** The instruction without its source location, so moving a line does not bust the cache. */
function stripLocation(instr: Instruction): unknown {
  const { range: _r, comments: _c, original: _o, ...rest } = instr as Instruction & Record<string, unknown>;
  return rest;
}

/** COPY destinations are relative to WORKDIR; a trailing "/" (meaning "directory") is kept. */
function absoluteDest(dest: string, workdir: string | undefined): string {
  const trailing = dest.endsWith("/") || dest === "." || dest.endsWith("/.");
  const abs = dest.startsWith("/") ? dest : `${workdir && workdir !== "" ? workdir : "/"}/${dest}`;
  const cleaned = resolveWorkdir("/", abs);
  return trailing && cleaned !== "/" ? `${cleaned}/` : cleaned === "/" ? "/" : cleaned;
}

function parseChmod(chmod: string): number {
  if (!/^[0-7]{1,4}$/.test(chmod)) throw new Error(`invalid chmod parameter: '${chmod}'. it should be octal string and between 0 and 07777`);
  return Number.parseInt(chmod, 8);
}
