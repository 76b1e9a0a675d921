// HTTP(S) for the registry client, on node:http so bodies stream both ways and HTTPS can trust the
// system CA bundle (Node's fetch only knows its bundled roots).
import http from "node:http";
import https from "node:https";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { rootCertificates } from "node:tls";
import { PassThrough, Readable } from "node:stream";
import { TruncatedBodyError } from "./errors.js";

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** A Buffer, or a factory so the body can be sent again after a 401 or a retry. */
  body?: Buffer | (() => Readable);
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL;
  /** Fails with TruncatedBodyError if the server stops short of its Content-Length. */
  body: Readable;
}

/** What the client sends requests through; wrap it to observe traffic. */
export type HttpTransport = (req: HttpRequest) => Promise<HttpResponse>;

/** Bundles Debian, Fedora and Alpine keep the system trust store in. */
const SYSTEM_CA_FILES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

let caCache: string[] | undefined;
function trustedCAs(): string[] {
  if (caCache) return caCache;
  const extra: string[] = [];
  for (const file of SYSTEM_CA_FILES) {
    try {
      extra.push(readFileSync(file, "utf8"));
      break;
    } catch {
      // try the next location
    }
  }
  caCache = [...rootCertificates, ...extra];
  return caCache;
}

export interface NodeTransportOptions {
  /** A connection silent for this long is dropped (a transient error, so retried). Default 60 s. */
  idleTimeoutMs?: number;
  /** PEM certificates trusted in addition to Node's roots and the system bundle (private registries' CAs). */
  extraCAs?: string[];
  /**
   * Docker's per-registry trust directory: `<certsDir>/<host[:port]>/*.crt` are CAs for that registry
   * only. Default /etc/docker/certs.d; "" disables.
   */
  certsDir?: string;
}

/** Keep-alive node:http/https with the system CAs, streaming request and response bodies. */
export function createNodeTransport(options: NodeTransportOptions = {}): HttpTransport {
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const certsDir = options.certsDir ?? "/etc/docker/certs.d";
  // Made on first use: creating an Agent loads node:http, which a fully cached build never needs.
  let plain: http.Agent | undefined;
  const secure = new Map<string, https.Agent>();
  const httpsAgent = (host: string): https.Agent => {
    let agent = secure.get(host);
    if (!agent) {
      agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: [...trustedCAs(), ...(options.extraCAs ?? []), ...hostCAs(certsDir, host)] });
      secure.set(host, agent);
    }
    return agent;
  };
  return (req) => send(req, req.url.protocol === "https:" ? httpsAgent(req.url.host) : (plain ??= new http.Agent({ keepAlive: true, maxSockets: 16 })), idleTimeoutMs);
}

/** PEM files `*.crt` of `<certsDir>/<host>/`, read once per host and transport. */
function hostCAs(certsDir: string, host: string): string[] {
  if (!certsDir) return [];
  const dir = path.join(certsDir, host.replace(/[/\\]/g, "_"));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith(".crt")).map((n) => readFileSync(path.join(dir, n), "utf8"));
}

function send(req: HttpRequest, agent: http.Agent, idleTimeoutMs: number): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const isHttps = req.url.protocol === "https:";
    const headers: Record<string, string> = { ...req.headers };
    if (Buffer.isBuffer(req.body)) headers["content-length"] = String(req.body.length);
    const options: http.RequestOptions = { method: req.method, headers, agent, timeout: idleTimeoutMs };
    if (req.signal) options.signal = req.signal;
    const r = (isHttps ? https : http).request(req.url, options);
    r.on("error", reject);
    // Fires for silence before and during the response body; the body then ends as truncated.
    r.on("timeout", () => r.destroy(Object.assign(new Error(`${req.method} ${req.url.host}: no data for ${idleTimeoutMs} ms`), { code: "ETIMEDOUT" })));
    r.on("response", (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: req.url, body: checkedBody(res, req.url, req.method) });
    });
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      let src: Readable;
      try {
        src = req.body();
      } catch (err) {
        r.destroy(err as Error); // e.g. the blob is missing locally: never leave the request half-open
        return;
      }
      src.on("error", (err) => r.destroy(err));
      src.pipe(r);
    }
  });
}

/** The default transport (60 s idle timeout). */
export const nodeTransport: HttpTransport = createNodeTransport();

/** Re-emits `res` and turns an early end or reset into TruncatedBodyError when Content-Length is known. */
function checkedBody(res: http.IncomingMessage, url: URL, method: string): Readable {
  const header = res.headers["content-length"];
  const expected = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
  if (expected === undefined || method === "HEAD" || res.statusCode === 204 || res.statusCode === 304) return res;
  let received = 0;
  const out = new PassThrough();
  const truncated = (): TruncatedBodyError => new TruncatedBodyError(url.href, expected, received);
  res.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (!out.write(chunk)) {
      res.pause();
      out.once("drain", () => res.resume());
    }
  });
  res.on("end", () => (received < expected ? out.destroy(truncated()) : out.end()));
  res.on("error", (err) => out.destroy(received < expected ? Object.assign(truncated(), { cause: err }) : err));
  res.on("aborted", () => out.destroy(truncated()));
  out.on("close", () => {
    if (!res.complete) res.destroy();
  });
  return out;
}

export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
  constructor(readonly limit: number) {
    super(`response body larger than ${limit} bytes`);
  }
}

/** Reads a (small) body as a Buffer, refusing more than `limit` bytes. */
export async function readBody(body: Readable, limit = 4 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Discards a body so the keep-alive socket can be reused. */
export async function drain(body: Readable): Promise<void> {
  try {
    for await (const _ of body) void _;
  } catch {
    // the body is not needed
  }
}

