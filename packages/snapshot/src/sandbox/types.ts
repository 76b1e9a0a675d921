/** A bind or tmpfs mount added inside the sandbox (RUN --mount, caches, secrets). */
export type SandboxMount =
  | {
      type: "bind";
      /** Host path (file or directory). */
      source: string;
      /** Absolute path inside the rootfs. */
      target: string;
      readonly?: boolean;
    }
  | {
      type: "tmpfs";
      target: string;
      /** Bytes; default: the kernel's (half of RAM). */
      size?: number;
      /** Permission bits of the tmpfs root; default 0o1777 like Docker. */
      mode?: number;
    };

export interface ExtraHost {
  host: string;
  ip: string;
}

/** Overlay to mount at `rootfs` inside the sandbox's mount namespace, so it vanishes with it. */
export interface SandboxOverlay {
  /** Top-most first; may be empty (FROM scratch). */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
}

export interface SandboxSpec {
  /**
   * Root directory of the container. With `overlay` it is the (empty) mount point the overlay is mounted
   * on inside the namespace; without it, an already prepared tree (copy driver or a host-side overlay mount).
   */
  rootfs: string;
  overlay?: SandboxOverlay;
  /** argv; shell form is already [shell..., cmd]. */
  args: string[];
  /** "K=V" entries, exactly the process environment (plus HOME from the image's /etc/passwd when absent, as runc does). */
  env: string[];
  /** Absolute path inside the rootfs; created if missing. */
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  network: "host" | "none";
  /** Default: 12 random hex digits, like a Docker container id. */
  hostname?: string;
  mounts?: SandboxMount[];
  extraHosts?: ExtraHost[];
  /**
   * "embedded" (default): a perl launcher that makes the namespaces itself, nothing to install, ~15 ms. "runc": an OCI bundle run by
   * runc (root only; the overlay is then mounted on the host for the duration of the run).
   */
  executor?: "embedded" | "runc";
  /**
   * With `overlay` (embedded executor): receives the xattrs of everything in the upper dir after the run, by
   * absolute path, read by the launcher on its way out; pass them to Rootfs.diff() to spare it a getfattr
   * process. Not called when they could not be read.
   */
  onUpperXattrs?: (xattrs: Map<string, Map<string, Buffer>>) => void;
  stdout?: (chunk: Buffer) => void;
  stderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export interface SandboxResult {
  exitCode: number;
  /** Set when the command was killed by a signal (exitCode is then 128 + its number). */
  signal?: string;
}
