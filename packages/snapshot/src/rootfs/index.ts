export * from "./errors.js";
export { overlayMountData, type OverlayDirs, type OverlayMountData } from "./overlay-options.js";
export {
  mountOverlay,
  unmount,
  probeOverlay,
  assertOverlaySupported,
  emptyLowerDir,
  type MountOverlayOptions,
  type OverlaySupport,
} from "./overlay.js";
export { diffOverlayUpper, type DiffOverlayOptions } from "./diff-overlay.js";
export { diffTrees, diffAgainstIndex, indexTree, type TreeIndex, type IndexedNode } from "./diff-trees.js";
export { materializeLowers } from "./copy.js";
export { readXattrs, type XattrMap } from "./xattrs.js";
export { createRootfs, type CreateRootfsOptions, type Rootfs, type RootfsDriver } from "./rootfs.js";
