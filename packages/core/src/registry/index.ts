export { RegistryClient, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type RegistryClientOptions, type RepositoryRef, type RequestOptions } from "./client.js";
export { Authenticator, parseChallenge, repositoryScope, type Challenge } from "./auth.js";
export {
  dockerConfigCredentials,
  dockerConfigDir,
  normalizeRegistryKey,
  runCredentialHelper,
  staticCredentials,
  type CredentialSource,
  type Credentials,
  type DockerConfigFile,
} from "./credentials.js";
export { isLoopbackRegistry, registryBaseUrl } from "./endpoint.js";
export {
  AuthError,
  CredentialHelperError,
  LayoutError,
  ManifestError,
  PlatformNotFoundError,
  RegistryError,
  TruncatedBodyError,
  type RegistryErrorDetail,
} from "./errors.js";
export { parseManifest, type ParsedManifest } from "./manifest.js";
export { normalizePlatform, platformScore, selectManifest } from "./platform.js";
export type { ProgressCallback, TransferEvent } from "./progress.js";
export { fetchBlobToStore, pullImage, resolveImage, type PullOptions, type PulledImage, type ResolveOptions, type ResolvedImage } from "./pull.js";
export { pushImage, pushManifest, type MountHint, type PushBlobSource, type PushOptions, type PushResult } from "./push.js";
export { DEFAULT_RETRY, isTransient, type RetryPolicy } from "./retry.js";
export { createNodeTransport, nodeTransport, type NodeTransportOptions, type HttpRequest, type HttpResponse, type HttpTransport } from "./transport.js";
export { copyImageToLayout, layoutBlobSource, pushLayout, readLayoutImage, type CopyToLayoutOptions, type ReadLayoutOptions } from "./layout.js";
