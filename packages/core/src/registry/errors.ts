import type { Platform } from "../image/oci.js";
import { formatPlatform } from "../image/oci.js";

/** One entry of the distribution spec's error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorDetail {
  code: string;
  message: string;
  detail?: unknown;
}

/** An unexpected HTTP answer from a registry; `code` is the first spec error code in the body, if any. */
export class RegistryError extends Error {
  override name = "RegistryError";
  readonly code: string | undefined;
  constructor(
    readonly status: number,
    readonly method: string,
    readonly url: string,
    readonly errors: RegistryErrorDetail[] = [],
    options?: ErrorOptions,
  ) {
    const first = errors[0];
    const what = first ? `${first.code}: ${first.message}` : `HTTP ${status}`;
    super(`${method} ${url}: ${what}${first ? ` (HTTP ${status})` : ""}`, options);
    this.code = first?.code;
  }
}

/** 401/403 after the auth flow ran, or a token server that refused us. */
export class AuthError extends RegistryError {
  override name = "AuthError";
}

/** A manifest or index that is not valid JSON, has an unsupported media type, or does not match its digest. */
export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(readonly reference: string, reason: string, options?: ErrorOptions) {
    super(`bad manifest for ${reference}: ${reason}`, options);
  }
}

/** The server closed the body before Content-Length bytes arrived (retried as transient). */
export class TruncatedBodyError extends Error {
  override name = "TruncatedBodyError";
  constructor(readonly url: string, readonly expected: number, readonly received: number) {
    super(`truncated response from ${url}: got ${received} of ${expected} bytes`);
  }
}

/** No manifest of an index matches the requested platform. */
export class PlatformNotFoundError extends Error {
  override name = "PlatformNotFoundError";
  constructor(readonly reference: string, readonly requested: Platform, readonly available: Platform[]) {
    const list = available.length ? available.map(formatPlatform).join(", ") : "none";
    super(`no image for platform ${formatPlatform(requested)} in ${reference} (available: ${list})`);
  }
}

/** A docker-credential-* helper failed (other than "credentials not found"). */
export class CredentialHelperError extends Error {
  override name = "CredentialHelperError";
  constructor(readonly helper: string, message: string, options?: ErrorOptions) {
    super(`docker-credential-${helper}: ${message}`, options);
  }
}

/** An OCI layout directory that cannot be read (missing index.json, ambiguous or unknown name…). */
export class LayoutError extends Error {
  override name = "LayoutError";
}

/** Parses a spec error body; anything else yields []. */
export function parseErrorBody(body: string): RegistryErrorDetail[] {
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(parsed.errors)) return [];
    return parsed.errors
      .filter((e): e is { code: unknown; message?: unknown; detail?: unknown } => typeof e === "object" && e !== null)
      .map((e) => ({ code: String(e.code), message: String(e.message ?? ""), ...(e.detail !== undefined ? { detail: e.detail } : {}) }));
  } catch {
    return [];
  }
}
