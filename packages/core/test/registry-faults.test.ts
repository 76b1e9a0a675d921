// Failure handling of the registry client against a small registry stand-in (node:http on 127.0.0.1)
// that misbehaves on purpose: resets, truncations, wrong bytes, bad manifests, token auth, redirects.
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import http from "node:http";
import https from "node:https";
import { networkInterfaces } from "node:os";
import { promisify } from "node:util";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BlobStore, DigestMismatchError, SizeMismatchError } from "@kiln/cache";
import {
  AuthError,
  ManifestError,
  MediaType,
  RegistryClient,
  RegistryError,
  TruncatedBodyError,
  createNodeTransport,
  pullImage,
  resolveImage,
  type Digest,
  type TransferEvent,
} from "@kiln/core";
import { makeImage, sha256, type MadeImage } from "./registry-fixtures.js";

type BlobFault = "stall" | "reset-once" | "reset-always" | "truncate-always" | "wrong-bytes" | "redirect" | "503-once" | undefined;

interface StandIn {
  host: string;
  manifests: Map<string, { body: Buffer; contentType: string }>;
  blobs: Map<string, Buffer>;
  blobFaults: Map<string, BlobFault>;
  /** Request log: "METHOD path auth?" */
  log: string[];
  tokenRequests: string[];
  /** When set, every /v2/ request needs "Bearer <token>" issued by /token. */
  bearer: boolean;
  manifestFault: "503-once" | undefined;
  close(): Promise<void>;
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; host: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function startStandIn(): Promise<StandIn> {
  const state = {
    manifests: new Map<string, { body: Buffer; contentType: string }>(),
    blobs: new Map<string, Buffer>(),
    blobFaults: new Map<string, BlobFault>(),
    log: [] as string[],
    tokenRequests: [] as string[],
    bearer: false,
    manifestFault: undefined as "503-once" | undefined,
  };
  const hits = new Map<string, number>();
  // A second origin that blob redirects point to, as registries do with storage backends.
  const storage = await listen((req, res) => {
    state.log.push(`STORAGE ${req.url} ${req.headers.authorization ? "auth" : "noauth"}`);
    const blob = state.blobs.get(decodeURIComponent(req.url?.slice(1) ?? ""));
    if (!blob) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": blob.length }).end(blob);
  });
  const { server, host } = await listen((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    state.log.push(`${req.method} ${url.pathname} ${req.headers.authorization ?? ""}`);
    if (url.pathname === "/token") {
      state.tokenRequests.push(url.searchParams.getAll("scope").join(" "));
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `tok-${url.searchParams.getAll("scope").join("+")}`, expires_in: 300 }));
      return;
    }
    if (state.bearer && !(req.headers.authorization ?? "").startsWith("Bearer tok-")) {
      const m = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(url.pathname);
      res
        .writeHead(401, {
          "www-authenticate": `Bearer realm="http://${host}/token",service="stand-in"${m ? `,scope="repository:${m[1]}:pull"` : ""}`,
          "content-type": "application/json",
        })
        .end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest) {
      const n = (hits.get(url.pathname) ?? 0) + 1;
      hits.set(url.pathname, n);
      if (state.manifestFault === "503-once" && n === 1) return void res.writeHead(503).end("busy");
      const m = state.manifests.get(manifest[2] ?? "");
      if (!m) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
        return;
      }
      res.writeHead(200, { "content-type": m.contentType, "content-length": m.body.length }).end(m.body);
      return;
    }
    const blobMatch = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (blobMatch) {
      const digest = blobMatch[2] ?? "";
      const blob = state.blobs.get(digest);
      if (!blob) return void res.writeHead(404).end();
      const n = (hits.get(digest) ?? 0) + 1;
      hits.set(digest, n);
      const fault = state.blobFaults.get(digest);
      if (fault === "503-once" && n === 1) return void res.writeHead(503).end();
      if (fault === "redirect") {
        return void res.writeHead(307, { location: `http://${storage.host}/${encodeURIComponent(digest)}` }).end();
      }
      if (fault === "wrong-bytes") {
        const wrong = Buffer.from(blob);
        wrong[wrong.length - 1] = (wrong[wrong.length - 1] ?? 0) ^ 0xff;
        return void res.writeHead(200, { "content-length": wrong.length }).end(wrong);
      }
      res.writeHead(200, { "content-length": blob.length });
      if (fault === "stall") return void res.write(blob.subarray(0, Math.floor(blob.length / 2))); // never ends
      if (fault === "truncate-always" || ((fault === "reset-once" && n === 1) || fault === "reset-always")) {
        res.write(blob.subarray(0, Math.floor(blob.length / 3)), () => {
          if (fault === "truncate-always") res.socket?.end();
          else res.socket?.destroy();
        });
        return;
      }
      res.end(blob);
      return;
    }
    res.writeHead(404).end();
  });
  return {
    ...state,
    host,
    get bearer() {
      return state.bearer;
    },
    set bearer(v: boolean) {
      state.bearer = v;
    },
    get manifestFault() {
      return state.manifestFault;
    },
    set manifestFault(v) {
      state.manifestFault = v;
    },
    close: async () => {
      server.closeAllConnections();
      storage.server.closeAllConnections();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => storage.server.close(r))]);
    },
  };
}

let tmp: string;
let standIn: StandIn;
let image: MadeImage;
let counter = 0;
const client = (): RegistryClient => new RegistryClient({ credentials: async () => undefined, retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 } });

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "kiln-registry-faults-"));
  const src = await BlobStore.open(path.join(tmp, "src"));
  image = await makeImage(src, [{ small: "x" }, { big: randomBytes(300_000) }], { docker: true });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let current: StandIn | undefined;
async function serve(): Promise<StandIn> {
  standIn = await startStandIn();
  current = standIn;
  standIn.manifests.set("latest", { body: image.manifestBytes, contentType: MediaType.dockerManifest });
  standIn.manifests.set(image.manifestDescriptor.digest, { body: image.manifestBytes, contentType: MediaType.dockerManifest });
  standIn.blobs.set(image.manifest.config.digest, image.configBytes);
  image.manifest.layers.forEach((l, i) => standIn.blobs.set(l.digest, image.layerBytes[i] as Buffer));
  return standIn;
}

afterEach(async () => {
  await current?.close();
  current = undefined;
});

const bigLayer = (): Digest => image.manifest.layers[1]!.digest;
async function store(): Promise<BlobStore> {
  return BlobStore.open(path.join(tmp, `store-${counter++}`));
}
async function storeIsEmpty(s: BlobStore): Promise<void> {
  expect(await readdir(path.join(s.root, "blobs", "sha256"))).toEqual([]);
  expect(await readdir(path.join(s.root, "ingest"))).toEqual([]);
}

describe("transient failures are retried from the start of the blob", () => {
  it("survives a connection reset mid-blob", async () => {
    const s = await serve();
    s.blobFaults.set(bigLayer(), "reset-once");
    const st = await store();
    const events: TransferEvent[] = [];
    const pulled = await pullImage(`${s.host}/app:latest`, st, { client: client(), onProgress: (e) => events.push(e) });
    expect(pulled.manifestDescriptor.digest).toBe(image.manifestDescriptor.digest);
    expect((await st.readBytes(bigLayer())).equals(image.layerBytes[1] as Buffer)).toBe(true);
    expect(s.log.filter((l) => l.startsWith(`GET /v2/app/blobs/${bigLayer()}`))).toHaveLength(2);
    expect(events.some((e) => e.type === "retry" && e.digest === bigLayer())).toBe(true);
  });

  it("retries 503 answers for manifests and blobs", async () => {
    const s = await serve();
    s.manifestFault = "503-once";
    s.blobFaults.set(image.manifest.config.digest, "503-once");
    const pulled = await pullImage(`${s.host}/app:latest`, await store(), { client: client() });
    expect(pulled.config).toEqual(image.config);
    expect(s.log.filter((l) => l.startsWith("GET /v2/app/manifests/latest"))).toHaveLength(2);
  });

  it("gives up on a body that is always cut short, leaving nothing behind", async () => {
    const s = await serve();
    s.blobFaults.set(bigLayer(), "truncate-always");
    const st = await store();
    const err = await pullImage(`${s.host}/app:latest`, st, { client: client() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TruncatedBodyError);
    expect((err as TruncatedBodyError).expected).toBe(image.layerBytes[1]!.length);
    expect(s.log.filter((l) => l.startsWith(`GET /v2/app/blobs/${bigLayer()}`))).toHaveLength(3);
    expect(await st.has(bigLayer())).toBe(false);
    expect(await readdir(path.join(st.root, "ingest"))).toEqual([]);
  });
});

describe("bad content fails without touching the store", () => {
  it("rejects a blob whose bytes do not match its digest", async () => {
    const s = await serve();
    s.blobFaults.set(bigLayer(), "wrong-bytes");
    const st = await store();
    const err = await pullImage(`${s.host}/app:latest`, st, { client: client() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(bigLayer());
    // Not retried: a wrong digest is not transient.
    expect(s.log.filter((l) => l.startsWith(`GET /v2/app/blobs/${bigLayer()}`))).toHaveLength(1);
    expect(await st.has(bigLayer())).toBe(false);
    expect(await st.has(image.manifestDescriptor.digest)).toBe(false);
    expect(await readdir(path.join(st.root, "ingest"))).toEqual([]);
  });

  it("rejects a blob longer than its descriptor says", async () => {
    const s = await serve();
    s.blobs.set(bigLayer(), Buffer.concat([image.layerBytes[1] as Buffer, Buffer.from("extra")]));
    const st = await store();
    const err = await pullImage(`${s.host}/app:latest`, st, { client: client() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SizeMismatchError);
    expect(await st.has(bigLayer())).toBe(false);
    expect(await readdir(path.join(st.root, "ingest"))).toEqual([]);
  });

  it.each([
    ["invalid JSON", () => Buffer.from("{not json"), MediaType.dockerManifest, /invalid JSON/],
    ["an unknown media type", () => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "text/plain", config: {}, layers: [] })), "text/plain", /unsupported media type "text\/plain"/],
    ["more than 4 MiB", () => Buffer.alloc(5 * 1024 * 1024, 0x20), MediaType.dockerManifest, /larger than 4194304 bytes/],
    ["schema 1", () => Buffer.from(JSON.stringify({ schemaVersion: 1, name: "app", fsLayers: [] })), "application/vnd.docker.distribution.manifest.v1+prettyjws", /schema 1/],
    ["a bad layer digest", () => Buffer.from(JSON.stringify({ ...image.manifest, layers: [{ mediaType: MediaType.dockerLayerGzip, digest: "md5:abc", size: 1 }] })), MediaType.dockerManifest, /layers\[0\] has an invalid/],
  ])("rejects a manifest with %s", async (_what, body, contentType, message) => {
    const s = await serve();
    s.manifests.set("latest", { body: body(), contentType });
    const st = await store();
    const err = await pullImage(`${s.host}/app:latest`, st, { client: client() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as Error).message).toMatch(message);
    await storeIsEmpty(st);
  });

  it("rejects manifest bytes that do not match the digest they were pulled by", async () => {
    const s = await serve();
    const other = Buffer.from(JSON.stringify({ ...image.manifest, annotations: { swapped: "yes" } }));
    s.manifests.set(image.manifestDescriptor.digest, { body: other, contentType: MediaType.dockerManifest });
    const st = await store();
    const err = await pullImage(`${s.host}/app@${image.manifestDescriptor.digest}`, st, { client: client() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).cause).toBeInstanceOf(DigestMismatchError);
    expect((err as Error).message).toContain(sha256(other));
    await storeIsEmpty(st);
  });

  it("reports the registry's error code and does not retry a 404", async () => {
    const s = await serve();
    const err = await resolveImage(`${s.host}/app:missing`, { client: client() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(404);
    expect((err as RegistryError).code).toBe("MANIFEST_UNKNOWN");
    expect(s.log.filter((l) => l.includes("manifests/missing"))).toHaveLength(1);
  });
});

describe("cancellation", () => {
  it("aborts a download in flight with the caller's reason and leaves no temp file", async () => {
    const s = await serve();
    s.blobFaults.set(bigLayer(), "stall");
    const st = await store();
    const ctl = new AbortController();
    const pulling = client().pull(`${s.host}/app:latest`, st, {
      signal: ctl.signal,
      onProgress: (e) => {
        if (e.type === "progress" && e.digest === bigLayer()) ctl.abort(new Error("user pressed ^C"));
      },
    });
    await expect(pulling).rejects.toThrow("user pressed ^C");
    expect(await st.has(bigLayer())).toBe(false);
    expect(await st.has(image.manifestDescriptor.digest)).toBe(false);
    // The ingest removes its temp file asynchronously after the abort.
    await expect.poll(() => readdir(path.join(st.root, "ingest"))).toEqual([]);
  });
});

describe("stalled connections", () => {
  it("drops a body that stops flowing and retries it", async () => {
    const s = await serve();
    s.blobFaults.set(bigLayer(), "stall");
    const st = await store();
    const c = new RegistryClient({ credentials: async () => undefined, idleTimeoutMs: 300, retry: { attempts: 2, baseDelayMs: 5 } });
    await expect(c.pull(`${s.host}/app:latest`, st)).rejects.toBeInstanceOf(TruncatedBodyError);
    expect(s.log.filter((l) => l.startsWith(`GET /v2/app/blobs/${bigLayer()}`))).toHaveLength(2);
    await expect.poll(() => readdir(path.join(st.root, "ingest"))).toEqual([]);
    expect(await st.has(bigLayer())).toBe(false);
  });
});

describe("token auth and redirects", () => {
  it("fetches an anonymous bearer token once per scope and reuses it", async () => {
    const s = await serve();
    s.bearer = true;
    const c = client();
    await pullImage(`${s.host}/app:latest`, await store(), { client: c });
    await resolveImage(`${s.host}/app:latest`, { client: c });
    expect(s.tokenRequests).toEqual(["repository:app:pull"]);
    const authed = s.log.filter((l) => l.startsWith("GET /v2/app/") && l.endsWith("Bearer tok-repository:app:pull"));
    expect(authed.length).toBe(1 + 3 + 1); // manifest, config + 2 layers, manifest again
    await resolveImage(`${s.host}/other:latest`, { client: c });
    expect(s.tokenRequests).toEqual(["repository:app:pull", "repository:other:pull"]);
  });

  it("refuses a token server that says no", async () => {
    const s = await serve();
    s.bearer = true;
    const deny = http.createServer((_req, res) => res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "DENIED", message: "no" }] })));
    await new Promise<void>((r) => deny.listen(0, "127.0.0.1", r));
    try {
      const port = (deny.address() as AddressInfo).port;
      // Point the challenge at the refusing server by rewriting it in a wrapping transport.
      const { nodeTransport } = await import("@kiln/core");
      const c = new RegistryClient({
        credentials: async () => undefined,
        transport: async (req) => {
          const res = await nodeTransport(req);
          const h = res.headers["www-authenticate"];
          if (typeof h === "string") res.headers["www-authenticate"] = h.replace(`http://${s.host}/token`, `http://127.0.0.1:${port}/token`);
          return res;
        },
      });
      const err = await resolveImage(`${s.host}/app:latest`, { client: c }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).code).toBe("DENIED");
    } finally {
      await new Promise((r) => deny.close(r));
    }
  });

  it("follows blob redirects to another origin without sending the registry token", async () => {
    const s = await serve();
    s.bearer = true;
    s.blobFaults.set(bigLayer(), "redirect");
    const st = await store();
    await pullImage(`${s.host}/app:latest`, st, { client: client() });
    expect((await st.readBytes(bigLayer())).equals(image.layerBytes[1] as Buffer)).toBe(true);
    expect(s.log.filter((l) => l.startsWith("STORAGE"))).toEqual([`STORAGE /${encodeURIComponent(bigLayer())} noauth`]);
  });
});

describe("TLS for registries that are not loopback", () => {
  it("talks HTTPS, refuses an untrusted certificate, and accepts it once its CA is trusted", async () => {
    const ip = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
    if (!ip) throw new Error("this test needs a non-loopback IPv4 address");
    const key = path.join(tmp, "tls.key");
    const crt = path.join(tmp, "tls.crt");
    await promisify(execFile)("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=kiln-test", "-addext", `subjectAltName=IP:${ip}`]);
    const cert = await readFile(crt, "utf8");
    const seen: string[] = [];
    const server = https.createServer({ key: await readFile(key), cert }, (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { "content-type": MediaType.dockerManifest, "content-length": image.manifestBytes.length }).end(image.manifestBytes);
    });
    await new Promise<void>((r) => server.listen(0, ip, r));
    try {
      const ref = `${ip}:${(server.address() as AddressInfo).port}/app:latest`;
      const untrusted = await resolveImage(ref, { client: client() }).catch((e: unknown) => e);
      expect((untrusted as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
      expect(seen).toEqual([]);
      const trusting = new RegistryClient({ credentials: async () => undefined, transport: createNodeTransport({ extraCAs: [cert] }) });
      const resolved = await resolveImage(ref, { client: trusting });
      expect(resolved.manifestDigest).toBe(image.manifestDescriptor.digest);
      expect(seen).toEqual(["GET /v2/app/manifests/latest"]);
      // Docker's certs.d layout: a CA for this registry only.
      const certsDir = path.join(tmp, "certs.d");
      await mkdir(path.join(certsDir, ref.split("/")[0]!), { recursive: true });
      await writeFile(path.join(certsDir, ref.split("/")[0]!, "ca.crt"), cert);
      const viaCertsD = new RegistryClient({ credentials: async () => undefined, transport: createNodeTransport({ certsDir }) });
      expect((await resolveImage(ref, { client: viaCertsD })).manifestDigest).toBe(image.manifestDescriptor.digest);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
