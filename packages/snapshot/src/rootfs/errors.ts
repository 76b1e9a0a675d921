export class RootfsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** overlayfs cannot be mounted here (not root and no usable user namespace, kernel without overlay, ...). */
export class OverlayUnsupportedError extends RootfsError {}

/** A path cannot be used in overlay mount options (",", ":" or "\\" in it, or not absolute). */
export class OverlayPathError extends RootfsError {}

/** mount/umount failed. */
export class MountError extends RootfsError {}

/** Reading the upper/tree for a diff failed (missing tool, unexpected file type, ...). */
export class DiffError extends RootfsError {}
