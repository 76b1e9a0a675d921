// HTTP(S) for the registry client, on node:http so bodies stream both ways and HTTPS can trust the
// system CA bundle (Node's fetch only knows its bundled roots).
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
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

let agents: { http: http.Agent; https: https.Agent } | undefined;
function sharedAgents(): { http: http.Agent; https: https.Agent } {
  agents ??= {
    http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 16, ca: trustedCAs() }),
  };
  return agents;
}

/** The default transport: keep-alive node:http/https, system CAs, streaming request and response bodies. */
export const nodeTransport: HttpTransport = (req) =>
  new Promise<HttpResponse>((resolve, reject) => {
    const isHttps = req.url.protocol === "https:";
    const a = sharedAgents();
    const headers: Record<string, string> = { ...req.headers };
    if (Buffer.isBuffer(req.body)) headers["content-length"] = String(req.body.length);
    const options: http.RequestOptions = { method: req.method, headers, agent: isHttps ? a.https : a.http };
    if (req.signal) options.signal = req.signal;
    const r = (isHttps ? https : http).request(req.url, options);
    r.on("error", reject);
    r.on("response", (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: req.url, body: checkedBody(res, req.url, req.method) });
    });
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      const src = req.body();
      src.on("error", (err) => r.destroy(err));
      src.pipe(r);
    }
  });

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

/** Reads a (small) body as a Buffer, refusing more than `limit` bytes. */
export async function readBody(body: Readable, limit = 4 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      body.destroy();
      throw new Error(`response body larger than ${limit} bytes`);
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

