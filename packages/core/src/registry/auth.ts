// Registry authentication: the WWW-Authenticate challenge, Basic auth, and Docker's token protocol
// (distribution/docs/spec/auth/token.md) with tokens cached per registry and scope set.
import type { CredentialSource, Credentials } from "./credentials.js";
import { AuthError, parseErrorBody } from "./errors.js";
import { readBody, type HttpTransport } from "./transport.js";

export interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"`; the first Basic or Bearer challenge wins. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const value of values) {
    const re = /\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)/y;
    const m = re.exec(value);
    if (!m?.[1]) continue;
    const scheme = m[1].toLowerCase();
    if (scheme !== "basic" && scheme !== "bearer") continue;
    const params: Record<string, string> = {};
    const paramRe = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
    paramRe.lastIndex = re.lastIndex;
    let p: RegExpExecArray | null;
    while ((p = paramRe.exec(value)) !== null && p[0] !== "") {
      const key = p[1];
      if (key) params[key.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : (p[3] ?? "");
    }
    return { scheme, params };
  }
  return undefined;
}

export function basicHeader(creds: Credentials): string {
  return "Basic " + Buffer.from(`${creds.username}:${creds.password}`).toString("base64");
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** Tokens are refreshed this long before they expire, so a request never carries a dying token. */
const EXPIRY_MARGIN_MS = 10_000;
/** The token spec's default lifetime when the server does not say. */
const DEFAULT_TOKEN_TTL_S = 60;

export class Authenticator {
  readonly #challenges = new Map<string, Challenge>();
  readonly #tokens = new Map<string, Promise<CachedToken>>();
  readonly #creds = new Map<string, Promise<Credentials | undefined>>();

  constructor(
    private readonly credentials: CredentialSource,
    private readonly transport: HttpTransport,
    private readonly userAgent: string,
  ) {}

  /** Records the challenge of a 401; false if the scheme is unknown (nothing to retry with). */
  learn(registry: string, header: string | string[] | undefined): boolean {
    const challenge = parseChallenge(header);
    if (!challenge) return false;
    // The challenge's scope names the repository of that one request; each request asks for its own.
    delete challenge.params.scope;
    this.#challenges.set(registry, challenge);
    return true;
  }

  hasChallenge(registry: string): boolean {
    return this.#challenges.has(registry);
  }

  /** Forgets cached tokens for these scopes (after the registry refused one). */
  invalidate(registry: string, scopes: string[]): void {
    this.#tokens.delete(tokenKey(registry, scopes));
  }

  /** The Authorization header for a request needing `scopes`, or undefined when none is needed or known. */
  async authorization(registry: string, scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.#challenges.get(registry);
    if (!challenge) return undefined;
    const creds = await this.#credentialsFor(registry);
    if (challenge.scheme === "basic") return creds ? basicHeader(creds) : undefined;
    const key = tokenKey(registry, scopes);
    let pending = this.#tokens.get(key);
    const now = Date.now();
    if (pending) {
      const cached = await pending.catch(() => undefined);
      if (cached && cached.expiresAt - EXPIRY_MARGIN_MS > now) return `Bearer ${cached.value}`;
      this.#tokens.delete(key);
    }
    pending = this.#fetchToken(registry, challenge, scopes, creds, signal);
    this.#tokens.set(key, pending);
    pending.catch(() => this.#tokens.delete(key));
    return `Bearer ${(await pending).value}`;
  }

  #credentialsFor(registry: string): Promise<Credentials | undefined> {
    let c = this.#creds.get(registry);
    if (!c) {
      c = this.credentials(registry);
      this.#creds.set(registry, c);
      c.catch(() => this.#creds.delete(registry));
    }
    return c;
  }

  async #fetchToken(
    registry: string,
    challenge: Challenge,
    scopes: string[],
    creds: Credentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new AuthError(401, "GET", registry, [{ code: "UNAUTHORIZED", message: "bearer challenge without realm" }]);
    const url = new URL(realm);
    const allScopes = [...new Set(scopes)];
    const service = challenge.params.service;
    const headers: Record<string, string> = { "user-agent": this.userAgent, accept: "application/json" };
    let method = "GET";
    let body: Buffer | undefined;
    if (creds?.identityToken) {
      // OAuth2 refresh-token grant, as the docker CLI does after a login that returned an identity token.
      method = "POST";
      const form = new URLSearchParams({ grant_type: "refresh_token", client_id: "kiln", refresh_token: creds.identityToken });
      if (service) form.set("service", service);
      if (allScopes.length) form.set("scope", allScopes.join(" "));
      body = Buffer.from(form.toString());
      headers["content-type"] = "application/x-www-form-urlencoded";
    } else {
      if (service) url.searchParams.set("service", service);
      for (const s of allScopes) url.searchParams.append("scope", s);
      if (creds) headers.authorization = basicHeader(creds);
    }
    const res = await this.transport({ method, url, headers, ...(body ? { body } : {}), ...(signal ? { signal } : {}) });
    const text = (await readBody(res.body, 1024 * 1024)).toString("utf8");
    if (res.status !== 200) {
      throw new AuthError(res.status, method, `${url.origin}${url.pathname}`, parseErrorBody(text));
    }
    let parsed: { token?: string; access_token?: string; expires_in?: number };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (err) {
      throw new AuthError(res.status, method, url.href, [{ code: "INVALID_TOKEN_RESPONSE", message: "not JSON" }], { cause: err });
    }
    const value = parsed.token || parsed.access_token;
    if (!value) throw new AuthError(res.status, method, url.href, [{ code: "INVALID_TOKEN_RESPONSE", message: "no token" }]);
    const ttl = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_TTL_S;
    return { value, expiresAt: Date.now() + ttl * 1000 };
  }
}

function tokenKey(registry: string, scopes: string[]): string {
  return `${registry}|${[...scopes].sort().join(" ")}`;
}

/** The token scope for a repository: `repository:library/alpine:pull` or `…:pull,push`. */
export function repositoryScope(path: string, push: boolean): string {
  return `repository:${path}:${push ? "pull,push" : "pull"}`;
}
