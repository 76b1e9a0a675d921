export type { BlobSource } from "./blob-source.js";
export type { ImageArtifact } from "./image-artifact.js";
export { imageBlobs } from "./image-artifact.js";
export { writeOciLayoutDir, writeOciLayoutTar, indexDescriptors, REF_NAME_ANNOTATION, CONTAINERD_NAME_ANNOTATION } from "./oci-layout.js";
export { writeDockerArchive, dockerManifestJson } from "./docker-archive.js";
export * from "./compress-image.js";
export { GZIP_RUN_BYTES, emptyCompressionStats, type CompressionStats } from "./layer-compression.js";
