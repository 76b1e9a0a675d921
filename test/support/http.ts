/** Minimal HTTP probes (node:http) for service readiness and registry queries. */
import http from "node:http";

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpRequest {
  method?: string;
  url?: string;
  socketPath?: string;
  path?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const common = { method: req.method ?? "GET", headers: req.headers ?? {}, timeout: req.timeoutMs ?? 5000 };
    const r = req.socketPath
      ? http.request({ ...common, socketPath: req.socketPath, path: req.path ?? "/" })
      : http.request(req.url ?? "", common);
    r.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    r.on("timeout", () => r.destroy(new Error(`timeout after ${common.timeout} ms`)));
    r.on("error", reject);
    r.end();
  });
}

/** Resolves to the response, or undefined when nothing answers (connection refused, timeout…). */
export async function probe(req: HttpRequest): Promise<HttpResponse | undefined> {
  try {
    return await httpRequest(req);
  } catch {
    return undefined;
  }
}

export function basicAuth(user: string, password: string): string {
  return "Basic " + Buffer.from(`${user}:${password}`).toString("base64");
}
