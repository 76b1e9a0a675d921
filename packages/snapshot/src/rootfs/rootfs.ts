import { statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { LayerEntry } from "../layer/index.js";
import { createStubLower } from "../sandbox/stubs.js";
import type { SandboxMount, SandboxOverlay } from "../sandbox/types.js";
import { materializeLowers } from "./copy.js";
import { diffOverlayUpper } from "./diff-overlay.js";
import { diffAgainstIndex, indexTree, type TreeIndex } from "./diff-trees.js";
import { probeOverlay, assertOverlaySupported } from "./overlay.js";
import type { XattrMap } from "./xattrs.js";

export type RootfsDriver = "overlay" | "copy";

export interface CreateRootfsOptions {
  /** "auto": overlay when it can be mounted with its upper in `dir`, else copy. */
  driver: RootfsDriver | "auto";
  /** Overlay-format layer dirs, top-most first; empty for FROM scratch. */
  lowerDirs: string[];
  /** Scratch directory owned by this rootfs (created; removed by dispose()). */
  dir: string;
  /**
   * Copy driver: the mounts the step will use. Their mount points (and /proc, /dev, /sys, /etc/hosts, ...)
   * are created before the tree is indexed, so placeholders never show up in the diff, as with the
   * overlay driver's placeholder lower.
   */
  mounts?: SandboxMount[];
  signal?: AbortSignal;
}

/** A writable root filesystem for one RUN step and the means to turn what the step did into a layer. */
export interface Rootfs {
  driver: RootfsDriver;
  /** The fields to put into SandboxSpec: the overlay is mounted inside the sandbox's mount namespace. */
  sandbox: { rootfs: string; overlay?: SandboxOverlay };
  /**
   * The layer entries for everything changed since creation (after the sandbox has exited). `xattrs`: the
   * run's SandboxResult.upperXattrs, which the overlay driver then need not read again.
   */
  diff(opts?: { signal?: AbortSignal; xattrs?: XattrMap }): Promise<LayerEntry[]>;
  /** Directory holding the changes: the overlay upper dir, or the whole tree for the copy driver. */
  changesDir: string;
  dispose(): Promise<void>;
}

export async function createRootfs(o: CreateRootfsOptions): Promise<Rootfs> {
  await mkdir(o.dir, { recursive: true });
  const driver: RootfsDriver = o.driver === "auto" ? ((await probeOverlay(o.dir)).ok ? "overlay" : "copy") : o.driver;
  const dispose = () => rm(o.dir, { recursive: true, force: true });
  if (driver === "overlay") {
    await assertOverlaySupported(o.dir);
    const upperDir = path.join(o.dir, "upper");
    const workDir = path.join(o.dir, "work");
    const merged = path.join(o.dir, "merged");
    await Promise.all([upperDir, workDir, merged].map((d) => mkdir(d, { mode: 0o755 })));
    return {
      driver,
      sandbox: { rootfs: merged, overlay: { lowerDirs: [...o.lowerDirs], upperDir, workDir } },
      changesDir: upperDir,
      diff: (d) => diffOverlayUpper(upperDir, { lowerDirs: o.lowerDirs, signal: d?.signal, ...(d?.xattrs ? { xattrs: d.xattrs } : {}) }),
      dispose,
    };
  }
  const tree = path.join(o.dir, "rootfs");
  await mkdir(tree, { mode: 0o755 });
  await materializeLowers(o.lowerDirs, tree, o.signal);
  await createStubLower(tree, o.mounts ?? [], (m) => statSync(m.source).isDirectory());
  const index: TreeIndex = await indexTree(tree, { signal: o.signal });
  return {
    driver,
    sandbox: { rootfs: tree },
    changesDir: tree,
    diff: (d) => diffAgainstIndex(index, tree, { sameTree: true, signal: d?.signal }),
    dispose,
  };
}
