// Low-level client for the OCI distribution API (distribution-spec v1.1): manifests and blobs of one
// repository at a time, with authentication, redirects and error bodies handled here.
import type { Readable } from "node:stream";
import type { BlobStore } from "@kiln/cache";
import type { ImageReference } from "../image/reference.js";
import type { ImageArtifact } from "../output/image-artifact.js";
import { Authenticator, repositoryScope } from "./auth.js";
import { dockerConfigCredentials, type CredentialSource } from "./credentials.js";
import { registryBaseUrl } from "./endpoint.js";
import { AuthError, ManifestError, RegistryError, parseErrorBody } from "./errors.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
// pull.ts and push.ts import this module too; the cycle is safe as both sides only call at run time.
import { pullImage, resolveImage, type PullOptions, type PulledImage, type ResolveOptions, type ResolvedImage } from "./pull.js";
import { pushImage, type PushBlobSource, type PushOptions, type PushResult } from "./push.js";
import { BodyTooLargeError, createNodeTransport, drain, nodeTransport, readBody, type HttpRequest, type HttpResponse, type HttpTransport } from "./transport.js";

/** A repository on a registry; ImageReference satisfies it. */
export interface RepositoryRef {
  domain: string;
  path: string;
}

export interface RegistryClientOptions {
  /** Where credentials come from; default: the docker CLI config ($DOCKER_CONFIG or ~/.docker). */
  credentials?: CredentialSource;
  /** Registries (host or host:port) to reach over plain HTTP. Loopback hosts always are. */
  insecureRegistries?: string[];
  /** Default: nodeTransport, or one with `idleTimeoutMs` when that is given. */
  transport?: HttpTransport;
  /** Drop a connection silent for this long (retried as transient). Default 60 s. */
  idleTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Parallel blob transfers per image (Docker's default is 3 down, 5 up). */
  concurrency?: number;
  userAgent?: string;
}

export interface RequestOptions {
  method: string;
  /** Path below /v2/<name>/ (e.g. "manifests/latest"), or an absolute URL (upload locations). */
  target: string | URL;
  headers?: Record<string, string>;
  body?: HttpRequest["body"];
  /** Push scope (pull,push) instead of pull; extra scopes (cross-repo mounts) go in `scopes`. */
  push?: boolean;
  scopes?: string[];
  /** Statuses that are success; anything else throws RegistryError/AuthError. */
  expect: number[];
  signal?: AbortSignal;
}

export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];

const MAX_REDIRECTS = 5;
/** Manifests bigger than this are refused, as containerd does (the spec requires registries to take 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export class RegistryClient {
  readonly retry: RetryPolicy;
  readonly concurrency: number;
  readonly #transport: HttpTransport;
  readonly #auth: Authenticator;
  readonly #insecure: string[];
  readonly #userAgent: string;

  constructor(options: RegistryClientOptions = {}) {
    this.#transport = options.transport ?? (options.idleTimeoutMs !== undefined ? createNodeTransport({ idleTimeoutMs: options.idleTimeoutMs }) : nodeTransport);
    this.#userAgent = options.userAgent ?? "kiln/0.1";
    this.#insecure = options.insecureRegistries ?? [];
    this.#auth = new Authenticator(options.credentials ?? dockerConfigCredentials(), this.#transport, this.#userAgent);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.concurrency = options.concurrency ?? 3;
  }

  /** resolveImage() through this client. */
  async resolve(ref: string | ImageReference, options: Omit<ResolveOptions, "client"> = {}): Promise<ResolvedImage> {
    return resolveImage(ref, { ...options, client: this });
  }

  /** pullImage() through this client. */
  async pull(ref: string | ImageReference, store: BlobStore, options: Omit<PullOptions, "client"> = {}): Promise<PulledImage> {
    return pullImage(ref, store, { ...options, client: this });
  }

  /** pushImage() through this client. */
  async push(image: ImageArtifact, blobs: PushBlobSource, ref: string | ImageReference, options: Omit<PushOptions, "client"> = {}): Promise<PushResult> {
    return pushImage(image, blobs, ref, { ...options, client: this });
  }

  /** `https://host/v2/<name>/` for a repository. */
  repositoryUrl(repo: RepositoryRef): URL {
    return new URL(`v2/${repo.path}/`, registryBaseUrl(repo.domain, this.#insecure));
  }

  /**
   * Sends one request with auth (answering a 401 challenge once, then retrying with credentials or a
   * token) and follows redirects for GET/HEAD. Throws unless the final status is in `expect`.
   */
  async request(repo: RepositoryRef, opts: RequestOptions): Promise<HttpResponse> {
    const url = typeof opts.target === "string" ? new URL(opts.target, this.repositoryUrl(repo)) : opts.target;
    const scopes = [repositoryScope(repo.path, opts.push === true), ...(opts.scopes ?? [])];
    for (let authTry = 0; ; authTry++) {
      const authorization = await this.#auth.authorization(repo.domain, scopes, opts.signal);
      const headers: Record<string, string> = { "user-agent": this.#userAgent, ...opts.headers };
      if (authorization) headers.authorization = authorization;
      const res = await this.#follow({ method: opts.method, url, headers, ...(opts.body ? { body: opts.body } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      if (res.status === 401 && authTry === 0) {
        const hadChallenge = this.#auth.hasChallenge(repo.domain);
        if (this.#auth.learn(repo.domain, res.headers["www-authenticate"])) {
          if (hadChallenge) this.#auth.invalidate(repo.domain, scopes);
          await drain(res.body);
          continue;
        }
      }
      if (!opts.expect.includes(res.status)) throw await errorFrom(res, opts.method);
      return res;
    }
  }

  async #follow(req: HttpRequest): Promise<HttpResponse> {
    let current = req;
    for (let hops = 0; ; hops++) {
      const res = await this.#transport(current);
      const location = res.headers.location;
      const redirect = [301, 302, 303, 307, 308].includes(res.status) && location !== undefined;
      if (!redirect || (current.method !== "GET" && current.method !== "HEAD") || hops >= MAX_REDIRECTS) return res;
      await drain(res.body);
      const next = new URL(location, current.url);
      const headers = { ...current.headers };
      // Blob redirects go to storage backends with their own signed URLs: never leak the registry token.
      if (next.origin !== current.url.origin) delete headers.authorization;
      current = { ...current, url: next, headers };
    }
  }

  /** GET a manifest by tag or digest; the bytes are returned untouched so their digest can be checked. */
  async fetchManifest(
    repo: RepositoryRef,
    reference: string,
    signal?: AbortSignal,
  ): Promise<{ bytes: Buffer; contentType: string | undefined; headerDigest: string | undefined }> {
    const res = await this.request(repo, {
      method: "GET",
      target: `manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(", ") },
      expect: [200],
      ...(signal ? { signal } : {}),
    });
    let bytes: Buffer;
    try {
      bytes = await readBody(res.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLargeError) throw new ManifestError(`${repo.domain}/${repo.path}:${reference}`, err.message, { cause: err });
      throw err;
    }
    return { bytes, contentType: headerValue(res, "content-type")?.split(";")[0]?.trim(), headerDigest: headerValue(res, "docker-content-digest") };
  }

  /** HEAD a manifest: its digest and media type, or undefined when the registry does not have it. */
  async headManifest(repo: RepositoryRef, reference: string, signal?: AbortSignal): Promise<{ digest: string | undefined; contentType: string | undefined; size: number } | undefined> {
    const res = await this.request(repo, {
      method: "HEAD",
      target: `manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(", ") },
      expect: [200, 404],
      ...(signal ? { signal } : {}),
    });
    await drain(res.body);
    if (res.status === 404) return undefined;
    return { digest: headerValue(res, "docker-content-digest"), contentType: headerValue(res, "content-type"), size: Number(headerValue(res, "content-length") ?? -1) };
  }

  /** PUT a manifest (image or index) under a tag or digest; returns the digest the registry reports. */
  async putManifest(repo: RepositoryRef, reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string | undefined> {
    const res = await this.request(repo, {
      method: "PUT",
      target: `manifests/${reference}`,
      headers: { "content-type": mediaType },
      body: bytes,
      push: true,
      expect: [201, 200],
      ...(signal ? { signal } : {}),
    });
    await drain(res.body);
    return headerValue(res, "docker-content-digest");
  }

  /** Size of a blob the registry has, or undefined. */
  async headBlob(repo: RepositoryRef, digest: string, signal?: AbortSignal, push = false): Promise<number | undefined> {
    const res = await this.request(repo, { method: "HEAD", target: `blobs/${digest}`, expect: [200, 404], push, ...(signal ? { signal } : {}) });
    await drain(res.body);
    if (res.status === 404) return undefined;
    const len = headerValue(res, "content-length");
    return len !== undefined ? Number(len) : -1;
  }

  /** GET a blob; the caller consumes (and verifies) the streaming body. */
  async openBlob(repo: RepositoryRef, digest: string, signal?: AbortSignal): Promise<{ body: Readable; size: number | undefined }> {
    const res = await this.request(repo, { method: "GET", target: `blobs/${digest}`, expect: [200], ...(signal ? { signal } : {}) });
    const len = headerValue(res, "content-length");
    return { body: res.body, size: len !== undefined ? Number(len) : undefined };
  }
}

export function headerValue(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Builds the typed error for a failed response (reading at most 64 KiB of its body). */
export async function errorFrom(res: HttpResponse, method: string): Promise<RegistryError> {
  let text = "";
  try {
    text = (await readBody(res.body, 64 * 1024)).toString("utf8");
  } catch {
    // keep the status alone
  }
  const errors = parseErrorBody(text);
  const url = res.url.origin + res.url.pathname;
  if (res.status === 401 || res.status === 403) {
    if (errors.length === 0) {
      errors.push({ code: res.status === 401 ? "UNAUTHORIZED" : "DENIED", message: res.status === 401 ? "authentication required" : "access denied" });
    }
    return new AuthError(res.status, method, url, errors);
  }
  return new RegistryError(res.status, method, url, errors);
}
