/** An OCI content digest (same template type as @kiln/cache's Digest). */
export type Digest = `sha256:${string}`;

export type LayerEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/**
 * One filesystem object in a layer. The shared model for the build engine, COPY, ADD and RUN diffs.
 * `path` is a relative POSIX path inside the layer: no leading "/" or "./", no trailing "/".
 */
export interface LayerEntry {
  path: string;
  type: LayerEntryType;
  /** Permission bits including setuid/setgid/sticky (masked with 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  mtimeMs: number;
  /** Byte count of a file's content; required for "file". */
  size?: number;
  /** Symlink target, or the in-layer path a hardlink points at. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
  /** File content; called once, when the entry is written. */
  open?: () => NodeJS.ReadableStream;
  /**
   * A host file holding the content, read with synchronous calls (much cheaper than a stream per small file);
   * used when `open` is absent. One of the two is needed for a file with content.
   */
  sourcePath?: string;
}

export type LayerCompression = "gzip" | "none";

export const MEDIA_TYPE_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
export const MEDIA_TYPE_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

export interface LayerInfo {
  /** sha256 of the uncompressed tar. */
  diffID: Digest;
  /** sha256 of the bytes written to the sink (compressed or not). */
  digest: Digest;
  /** Bytes written to the sink. */
  size: number;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
  mediaType: string;
}
