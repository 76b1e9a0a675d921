// RUN: stack the image's unpacked layers under a fresh overlay upper dir, run the command in the
// sandbox, and turn what changed into the next layer.
import { chmod, chown, copyFile, cp, lstat, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { createHash } from "node:crypto";
import { createRootfs, runInSandbox, type LayerEntry, type Rootfs, type RootfsDriver, type SandboxMount } from "@kiln/snapshot";
import type { RunInstruction, RunMount } from "../../dockerfile/instructions.js";
import type { ImageConfig, LayerDescriptor } from "../../image/oci.js";
import { envWithDefaultPath, shellOf } from "../image-config.js";
import type { UnpackedLayers } from "../unpacked-layers.js";
import type { ResolvedUser } from "../users.js";
import { writeLayerToStore } from "./layer-writer.js";
import type { BlobStore } from "@kiln/cache";

export class RunStepError extends Error {
  override readonly name = "RunStepError";
  constructor(
    message: string,
    readonly exitCode: number,
    readonly lastOutput: string[],
  ) {
    super(message);
  }
}

export interface SecretSource {
  id: string;
  /** Host file holding the secret. */
  src: string;
}

export interface RunStepOptions {
  instr: RunInstruction;
  config: ImageConfig;
  layers: LayerDescriptor[];
  env: string[];
  user: ResolvedUser;
  unpacked: UnpackedLayers;
  blobs: BlobStore;
  /** Scratch space for upper/work dirs (inside the store, same filesystem as the layers). */
  workRoot: string;
  /** Persistent `type=cache` mounts live here. */
  cacheMountRoot: string;
  /** The build context directory, for `type=bind` mounts without `from`. */
  contextDir: string;
  secrets: Map<string, SecretSource>;
  /** The build-wide default for `--network` ("host" unless the build says otherwise). */
  defaultNetwork: "host" | "none";
  /** How the rootfs is made: overlayfs, or copies where overlay cannot mount. */
  driver: RootfsDriver;
  /** What runs the command: kiln's own namespaces launcher, or runc from an OCI runtime spec. */
  executor: "embedded" | "runc";
  /** The merged filesystem of a stage or image, for `--mount=from=` (bind and cache). */
  resolveFrom: (from: string) => Promise<string>;
  sourceDateEpoch?: number;
  onOutput: (stream: "stdout" | "stderr", data: string) => void;
  signal?: AbortSignal;
}

/** The argv of a RUN: shell form goes through the image's SHELL (default /bin/sh -c). */
export function runArgs(instr: RunInstruction, config: ImageConfig): string[] {
  if (!instr.prependShell) return instr.command;
  const files = instr.files;
  // A heredoc RUN (`RUN <<EOF`) runs its body as the shell script, as BuildKit does without a shebang.
  if (files.length > 0 && instr.command.length === 1 && /^\s*<<-?\s*["']?\w+["']?\s*$/.test(instr.command[0] ?? "")) {
    const body = files[0]!.chomp ? files[0]!.data.replace(/^\t+/gm, "") : files[0]!.data;
    return [...shellOf(config), body];
  }
  return [...shellOf(config), ...instr.command];
}

const TAIL_LINES = 12;

/** Executes the RUN and writes its layer. Returns the layer (possibly an empty one). */
export async function executeRun(opts: RunStepOptions): Promise<LayerDescriptor> {
  const { instr, config, signal } = opts;
  const lowerDirs = await opts.unpacked.lowerDirs(opts.layers, signal);
  await mkdir(opts.workRoot, { recursive: true });
  const work = await mkdtemp(path.join(opts.workRoot, "run-"));
  // The last lines of output, for the error message; a line may arrive split across chunks.
  const tail: string[] = [];
  let partial = "";
  const keepTail = (data: string) => {
    const lines = (partial + data).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line !== "") tail.push(line);
    while (tail.length > TAIL_LINES) tail.shift();
  };
  let rootfs: Rootfs | undefined;
  try {
    const { mounts, extraEnv } = await prepareMounts(instr.mounts ?? [], opts, work);
    rootfs = await createRootfs({ driver: opts.driver, lowerDirs, dir: path.join(work, "rootfs"), mounts, ...(signal ? { signal } : {}) });
    const args = runArgs(instr, config);
    let upperXattrs: Map<string, Map<string, Buffer>> | undefined;
    const result = await runInSandbox({
      ...rootfs.sandbox,
      args,
      env: envWithDefaultPath([...opts.env, ...extraEnv]),
      cwd: config.config?.WorkingDir || "/",
      user: { uid: opts.user.uid, gid: opts.user.gid, additionalGids: opts.user.additionalGids },
      network: instr.network === "none" ? "none" : instr.network === "host" ? "host" : opts.defaultNetwork,
      hostname: "buildkitsandbox", // what BuildKit's RUN sees
      executor: opts.executor,
      mounts,
      onUpperXattrs: (x) => (upperXattrs = x),
      stdout: (chunk) => {
        const text = chunk.toString("utf8");
        keepTail(text);
        opts.onOutput("stdout", text);
      },
      stderr: (chunk) => {
        const text = chunk.toString("utf8");
        keepTail(text);
        opts.onOutput("stderr", text);
      },
      ...(signal ? { signal } : {}),
    });
    if (result.exitCode !== 0) {
      if (partial !== "") tail.push(partial);
      while (tail.length > TAIL_LINES) tail.shift();
      const shown = JSON.stringify(args.join(" "));
      throw new RunStepError(
        `process ${shown} did not complete successfully: exit code: ${result.exitCode}${tail.length ? `\n${tail.map((l) => `  > ${l}`).join("\n")}` : ""}`,
        result.exitCode,
        [...tail],
      );
    }
    const entries = await rootfs.diff({ ...(signal ? { signal } : {}), ...(upperXattrs ? { xattrs: upperXattrs } : {}) });
    await addRuntimeMountPoints(entries, lowerDirs, opts.sourceDateEpoch);
    const untouched = !touchesUserDb(entries) && !(await userDbLinked(lowerDirs));
    const write = () =>
      writeLayerToStore(opts.blobs, entries, {
        ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
        ...(signal ? { signal } : {}),
      });
    const layer = entries.length === 0 ? await emptyLayer(opts.blobs, write) : await write();
    if (untouched) {
      if (userDbUntouched.size > 10_000) userDbUntouched.clear();
      userDbUntouched.add(chainKey(opts.layers, layer.diffID));
    }
    return layer;
  } finally {
    await rootfs?.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

/** The empty layer (a RUN that changed nothing) of each store, written once per process. */
const emptyLayers = new WeakMap<BlobStore, Promise<LayerDescriptor>>();

/**
 * A RUN that changes nothing still adds a layer, as with BuildKit: the empty tar, whose bytes never vary.
 * It is written the first time and reused while its blob is in the store (same descriptor either way).
 */
async function emptyLayer(blobs: BlobStore, write: () => Promise<LayerDescriptor>): Promise<LayerDescriptor> {
  const known = await emptyLayers.get(blobs)?.catch(() => undefined);
  if (known && (await blobs.has(known.digest))) return known;
  const p = write();
  emptyLayers.set(blobs, p);
  return p;
}

/**
 * BuildKit's runc creates /dev, /proc and /sys in the rootfs when the image lacks them, and they stay in
 * the layer (its mount-stub cleanup only covers /etc/hosts, /etc/resolv.conf and --mount targets).
 */
async function addRuntimeMountPoints(entries: LayerEntry[], lowerDirs: string[], sourceDateEpoch: number | undefined): Promise<void> {
  for (const name of ["dev", "proc", "sys"]) {
    if (entries.some((e) => e.path === name)) continue;
    let present = false;
    for (const lower of lowerDirs) {
      if (await hasEntry(path.join(lower, name))) {
        present = true;
        break;
      }
    }
    if (!present) entries.push({ path: name, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: (sourceDateEpoch ?? 0) * 1000 });
  }
}

// Unpacked layers never change, so what one holds at a path is looked up once per process.
const lowerEntries = new Map<string, "none" | "symlink" | "other">();

async function entryKind(file: string): Promise<"none" | "symlink" | "other"> {
  let v = lowerEntries.get(file);
  if (v === undefined) {
    v = await lstat(file).then(
      (st) => (st.isSymbolicLink() ? "symlink" : "other"),
      () => "none" as const,
    );
    if (lowerEntries.size > 100_000) lowerEntries.clear();
    lowerEntries.set(file, v);
  }
  return v;
}

async function hasEntry(file: string): Promise<boolean> {
  return (await entryKind(file)) !== "none";
}

/**
 * RUN layers known to leave /etc/passwd and /etc/group as they were, each keyed by the layers below it and
 * its own diffID: they can be skipped when reading the user database, so the RUNs of a stage that do not
 * touch /etc share one lookup instead of listing every new layer.
 */
const userDbUntouched = new Set<string>();

function chainKey(layers: LayerDescriptor[], top: string): string {
  return `${layers.map((l) => l.diffID).join(",")}>${top}`;
}

/** The layers that matter for /etc/passwd and /etc/group (see userDbUntouched); the same array if all do. */
export function userDbLayers(layers: LayerDescriptor[]): LayerDescriptor[] {
  if (userDbUntouched.size === 0) return layers;
  const kept = layers.filter((l, i) => !userDbUntouched.has(chainKey(layers.slice(0, i), l.diffID)));
  return kept.length === layers.length ? layers : kept;
}

/** Whether a diff can change what /etc/passwd or /etc/group read as (conservatively: anything under /etc). */
function touchesUserDb(entries: LayerEntry[]): boolean {
  return entries.some((e) => e.path === "etc" || e.path.startsWith("etc/") || e.path === ".wh.etc" || e.path === ".wh..wh..opq");
}

/** Whether /etc, /etc/passwd or /etc/group is a symlink in the merged lowers (then changes elsewhere count too). */
async function userDbLinked(lowerDirs: string[]): Promise<boolean> {
  for (const name of ["etc", "etc/passwd", "etc/group"]) {
    for (const lower of lowerDirs) {
      const kind = await entryKind(path.join(lower, name));
      if (kind === "symlink") return true;
      if (kind !== "none") break; // the top-most one decides
    }
  }
  return false;
}

/** Turns `RUN --mount` specs into sandbox mounts (cache dirs, context binds, tmpfs, secrets). */
async function prepareMounts(mounts: RunMount[], opts: RunStepOptions, work: string): Promise<{ mounts: SandboxMount[]; extraEnv: string[] }> {
  const out: SandboxMount[] = [];
  const extraEnv: string[] = [];
  for (const m of mounts) {
    switch (m.type) {
      case "cache": {
        const target = m.target!;
        const id = m.id ?? target;
        const dir = path.join(opts.cacheMountRoot, createHash("sha256").update(id).digest("hex").slice(0, 32));
        await mkdir(opts.cacheMountRoot, { recursive: true });
        let created = true;
        try {
          await mkdir(dir);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
          created = false;
        }
        if (created) {
          // A new cache starts empty, or with a copy of `from`'s `source` (BuildKit seeds it the same way).
          if (m.from !== undefined) {
            const seed = path.join(await opts.resolveFrom(m.from), path.posix.normalize(`/${m.source ?? "/"}`));
            await cp(seed, dir, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
          }
          await chmod(dir, m.mode ?? 0o755);
          await chown(dir, m.uid ?? 0, m.gid ?? 0);
        }
        out.push({ type: "bind", source: dir, target, readonly: m.readOnly });
        break;
      }
      case "bind": {
        const root = m.from !== undefined ? await opts.resolveFrom(m.from) : opts.contextDir;
        const source = path.join(root, path.posix.normalize(`/${m.source ?? "/"}`));
        // A read-write bind of the context must not change the context: bind a scratch copy instead.
        if (!m.readOnly) {
          const copy = path.join(work, `bind-${out.length}`);
          await cp(source, copy, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
          out.push({ type: "bind", source: copy, target: m.target!, readonly: false });
        } else out.push({ type: "bind", source, target: m.target!, readonly: true });
        break;
      }
      case "tmpfs":
        out.push({ type: "tmpfs", target: m.target!, ...(m.sizeLimit > 0 ? { size: m.sizeLimit } : {}) });
        break;
      case "secret": {
        const id = m.id ?? (m.target ? path.posix.basename(m.target) : undefined);
        const secret = id !== undefined ? opts.secrets.get(id) : undefined;
        if (!secret) {
          if (m.required) throw new Error(`secret ${id ?? "(no id)"} is required but was not provided (--secret id=${id ?? "ID"},src=FILE)`);
          break;
        }
        // A private copy carries the requested owner and mode without touching the host file.
        const file = path.join(work, `secret-${out.length}`);
        await copyFile(secret.src, file);
        await chmod(file, m.mode ?? 0o400);
        await chown(file, m.uid ?? 0, m.gid ?? 0);
        if (m.env !== undefined) {
          extraEnv.push(`${m.env}=${(await readFile(secret.src, "utf8")).replace(/\n$/, "")}`);
        }
        if (m.target !== undefined || m.env === undefined) out.push({ type: "bind", source: file, target: m.target ?? `/run/secrets/${id}`, readonly: true });
        break;
      }
      case "ssh":
        throw new Error("--mount=type=ssh is not supported by kiln yet");
    }
  }
  return { mounts: out, extraEnv };
}
