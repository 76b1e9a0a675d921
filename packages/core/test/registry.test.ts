// The registry client against Debian's docker-registry (test/support/services.ts).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobNotFoundError, BlobStore } from "@kiln/cache";
import {
  AuthError,
  MediaType,
  PlatformNotFoundError,
  RegistryClient,
  copyImageToLayout,
  dockerConfigCredentials,
  nodeTransport,
  parseReference,
  pullImage,
  pushImage,
  pushLayout,
  pushManifest,
  readLayoutImage,
  resolveImage,
  type HttpTransport,
  type ImageIndex,
  type TransferEvent,
} from "@kiln/core";
import { ensureRegistry, requireTool, TEST_REGISTRY_USER } from "../../../test/support/services.js";
import { ensureBaseImages } from "../../../test/support/base-images.js";
import { makeImage, sha256, uniqueRepo } from "./registry-fixtures.js";

const run = promisify(execFile);

/** Wraps the real transport to record every request line. */
function countingTransport(): { transport: HttpTransport; requests: string[] } {
  const requests: string[] = [];
  return {
    requests,
    transport: (req) => {
      requests.push(`${req.method} ${req.url.pathname}${req.url.search}`);
      return nodeTransport(req);
    },
  };
}

const anonymous = async (): Promise<undefined> => undefined;
const uploadsOf = (requests: string[]): string[] => requests.filter((r) => /^(POST|PUT|PATCH) .*\/blobs\/uploads\//.test(r));

let host: string;
let tmp: string;
let srcStore: BlobStore;

beforeAll(async () => {
  host = (await ensureRegistry()).host;
  tmp = await mkdtemp(path.join(tmpdir(), "kiln-registry-"));
  srcStore = await BlobStore.open(path.join(tmp, "src-store"));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function freshStore(name: string): Promise<BlobStore> {
  return BlobStore.open(path.join(tmp, name));
}

describe("push and pull against docker-registry", () => {
  it.each([
    ["OCI", false],
    ["Docker schema 2", true],
  ])("round-trips a %s image by tag and by digest", async (_kind, docker) => {
    const image = await makeImage(srcStore, [{ "hello.txt": "hello\n" }, { "etc/salt": randomBytes(1000) }], { docker });
    const ref = `${host}/${uniqueRepo("roundtrip")}:v1`;
    const client = new RegistryClient({ credentials: anonymous });
    const pushed = await pushImage(image, srcStore, ref, { client, tags: ["also"] });
    expect(pushed.digest).toBe(image.manifestDescriptor.digest);
    expect(pushed.uploaded.sort()).toEqual([image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)].sort());

    const byTag = await freshStore(`pull-tag-${docker}`);
    const pulled = await pullImage(ref, byTag, { client });
    expect(pulled.manifestDescriptor.digest).toBe(image.manifestDescriptor.digest);
    expect(pulled.manifestDescriptor.mediaType).toBe(docker ? MediaType.dockerManifest : MediaType.ociManifest);
    expect(pulled.config).toEqual(image.config);
    expect(pulled.manifestBytes.equals(image.manifestBytes)).toBe(true);
    for (const [i, layer] of image.manifest.layers.entries()) {
      expect((await byTag.readBytes(layer.digest)).equals(image.layerBytes[i] as Buffer)).toBe(true);
    }
    expect(await byTag.has(image.manifestDescriptor.digest)).toBe(true);

    const repo = ref.slice(0, ref.lastIndexOf(":"));
    const byDigest = await freshStore(`pull-digest-${docker}`);
    const again = await pullImage(`${repo}@${image.manifestDescriptor.digest}`, byDigest, { client });
    expect(again.manifest).toEqual(image.manifest);
    const viaExtraTag = await resolveImage(`${repo}:also`, { client });
    expect(viaExtraTag.manifestDigest).toBe(image.manifestDescriptor.digest);
  });

  it("never fetches or uploads a blob twice", async () => {
    const image = await makeImage(srcStore, [{ a: randomBytes(5000) }, { b: randomBytes(5000) }]);
    const ref = `${host}/${uniqueRepo("twice")}:latest`;
    const { transport, requests } = countingTransport();
    const client = new RegistryClient({ credentials: anonymous, transport });
    await pushImage(image, srcStore, ref, { client });
    expect(uploadsOf(requests).length).toBeGreaterThanOrEqual(3 * 2); // POST + PUT per blob
    requests.length = 0;
    const second = await pushImage(image, srcStore, ref, { client });
    expect(uploadsOf(requests)).toEqual([]);
    expect(second.uploaded).toEqual([]);
    expect(second.skipped).toHaveLength(3);

    const store = await freshStore("pull-twice");
    await pullImage(ref, store, { client });
    requests.length = 0;
    const events: TransferEvent[] = [];
    await pullImage(ref, store, { client, onProgress: (e) => events.push(e) });
    expect(requests.filter((r) => r.startsWith("GET") && r.includes("/blobs/"))).toEqual([]);
    expect(requests.filter((r) => r.includes("/manifests/"))).toEqual([`GET /v2/${ref.slice(host.length + 1, ref.lastIndexOf(":"))}/manifests/latest`]);
    // By digest, a stored manifest is as good as the registry's: no request at all.
    requests.length = 0;
    const byDigest = await pullImage(`${ref.slice(0, ref.lastIndexOf(":"))}@${image.manifestDescriptor.digest}`, store, { client });
    expect(byDigest.manifestBytes.equals(image.manifestBytes)).toBe(true);
    expect(requests).toEqual([]);
    expect(events.filter((e) => e.type === "exists").map((e) => (e as { digest: string }).digest).sort()).toEqual(
      [image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)].sort(),
    );
  });

  it("re-runs a push that failed half-way by uploading only what is missing", async () => {
    const image = await makeImage(srcStore, [{ a: randomBytes(4000) }, { b: randomBytes(4000) }]);
    const failing = image.manifest.layers[1]!.digest;
    const ref = `${host}/${uniqueRepo("resume")}:1`;
    const broken = new RegistryClient({
      credentials: anonymous,
      transport: (req) => {
        if (req.method === "PUT" && req.url.searchParams.get("digest") === failing) return Promise.reject(new Error("injected: disk full"));
        return nodeTransport(req);
      },
    });
    await expect(pushImage(image, srcStore, ref, { client: broken, concurrency: 1 })).rejects.toThrow("injected: disk full");
    await expect(resolveImage(ref, { client: broken })).rejects.toMatchObject({ status: 404 });

    const { transport, requests } = countingTransport();
    const result = await pushImage(image, srcStore, ref, { client: new RegistryClient({ credentials: anonymous, transport }) });
    expect(result.uploaded).toEqual([failing]);
    expect(result.skipped.sort()).toEqual([image.manifest.config.digest, image.manifest.layers[0]!.digest].sort());
    expect(requests.filter((r) => r.startsWith("PUT") && r.includes("/blobs/uploads/"))).toHaveLength(1);
  });

  it("fails clearly when a layer is missing from the local store", async () => {
    const image = await makeImage(srcStore, [{ gone: randomBytes(100) }]);
    const empty = await freshStore("empty-source");
    await empty.writeBytes(image.configBytes);
    const err = await pushImage(image, empty, `${host}/${uniqueRepo("missing")}:1`, { client: new RegistryClient({ credentials: anonymous }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobNotFoundError);
    expect((err as BlobNotFoundError).digest).toBe(image.manifest.layers[0]!.digest);
  });

  it("uploads big blobs in PATCH chunks and mounts blobs from another repository", async () => {
    const big = randomBytes(300_000); // random: gzip cannot shrink it below the threshold
    const image = await makeImage(srcStore, [{ big }]);
    const layer = image.manifest.layers[0]!;
    const { transport, requests } = countingTransport();
    const client = new RegistryClient({ credentials: anonymous, transport });
    const source = uniqueRepo("chunked");
    await pushImage(image, srcStore, `${host}/${source}:1`, { client, monolithicThreshold: 64 * 1024, chunkSize: 64 * 1024 });
    const patches = requests.filter((r) => r.startsWith("PATCH"));
    expect(patches.length).toBe(Math.ceil(layer.size / (64 * 1024)));
    const store = await freshStore("pull-chunked");
    await pullImage(`${host}/${source}:1`, store, { client });
    expect((await store.readBytes(layer.digest)).equals(image.layerBytes[0] as Buffer)).toBe(true);

    requests.length = 0;
    const target = uniqueRepo("mounted");
    const result = await pushImage(image, srcStore, `${host}/${target}:1`, { client, mountFrom: `${host}/${source}` });
    expect(result.mounted.sort()).toEqual([image.manifest.config.digest, layer.digest].sort());
    expect(requests.filter((r) => r.startsWith("POST")).every((r) => r.includes("mount=") && r.includes(`from=${encodeURIComponent(source)}`))).toBe(true);
    expect(requests.filter((r) => r.startsWith("PATCH") || (r.startsWith("PUT") && r.includes("/blobs/")))).toEqual([]);
    expect((await resolveImage(`${host}/${target}:1`, { client })).manifestDigest).toBe(image.manifestDescriptor.digest);
  });
});

describe("multi-platform index", () => {
  let repo: string;
  let digests: Record<string, string>;
  const client = new RegistryClient({ credentials: anonymous });

  beforeAll(async () => {
    repo = `${host}/${uniqueRepo("multi")}`;
    const platforms = [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
      { os: "linux", architecture: "arm", variant: "v6" },
    ];
    digests = {};
    const manifests = [];
    for (const platform of platforms) {
      const image = await makeImage(srcStore, [{ arch: `${platform.architecture}${platform.variant ?? ""}` }], { platform, label: platform.architecture });
      await pushImage(image, srcStore, `${repo}@${image.manifestDescriptor.digest}`, { client });
      digests[[platform.os, platform.architecture, platform.variant].filter(Boolean).join("/")] = image.manifestDescriptor.digest;
      manifests.push({ ...image.manifestDescriptor, platform });
    }
    // An attestation-like entry without a usable platform must never be chosen.
    manifests.push({ ...manifests[0]!, platform: { os: "unknown", architecture: "unknown" } });
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
    await pushManifest(`${repo}:multi`, Buffer.from(JSON.stringify(index)), MediaType.ociIndex, { client });
  });

  it("picks the manifest of the requested platform", async () => {
    const arm64 = await resolveImage(`${repo}:multi`, { client, platform: { os: "linux", architecture: "arm64" } });
    expect(arm64.manifestDigest).toBe(digests["linux/arm64/v8"]);
    expect(arm64.index?.index.manifests).toHaveLength(4);
    expect(arm64.manifestDescriptor.platform).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    const amd64 = await resolveImage(`${repo}:multi`, { client, platform: { os: "linux", architecture: "amd64" } });
    expect(amd64.manifestDigest).toBe(digests["linux/amd64"]);
    // arm/v7 hosts run arm/v6 images (containerd's matcher).
    const armv7 = await resolveImage(`${repo}:multi`, { client, platform: { os: "linux", architecture: "arm", variant: "v7" } });
    expect(armv7.manifestDigest).toBe(digests["linux/arm/v6"]);
  });

  it("pulls one platform and stores the index too", async () => {
    const store = await freshStore("pull-multi");
    const pulled = await pullImage(`${repo}:multi`, store, { client, platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    expect(pulled.config.architecture).toBe("arm64");
    expect(await store.has(pulled.index!.descriptor.digest)).toBe(true);
    expect(await store.has(pulled.manifestDescriptor.digest)).toBe(true);
  });

  it("lists the available platforms when none matches", async () => {
    const err = await resolveImage(`${repo}:multi`, { client, platform: { os: "linux", architecture: "s390x" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlatformNotFoundError);
    expect((err as PlatformNotFoundError).available.map((p) => p.architecture)).toEqual(["amd64", "arm64", "arm", "unknown"]);
    expect((err as Error).message).toContain("linux/arm64/v8");
  });
});

describe("authentication (htpasswd registry)", () => {
  let authHost: string;
  let configDir: string;
  let image: Awaited<ReturnType<typeof makeImage>>;
  const savedEnv = { DOCKER_CONFIG: process.env.DOCKER_CONFIG, PATH: process.env.PATH };

  beforeAll(async () => {
    authHost = (await ensureRegistry({ auth: "htpasswd" })).host;
    configDir = await mkdtemp(path.join(tmp, "docker-config-"));
    image = await makeImage(srcStore, [{ secret: randomBytes(100) }]);
  });

  afterAll(() => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("fails with AuthError without credentials", async () => {
    await writeFile(path.join(configDir, "config.json"), JSON.stringify({ auths: {} }));
    const client = new RegistryClient({ credentials: dockerConfigCredentials(configDir) });
    const err = await pushImage(image, srcStore, `${authHost}/${uniqueRepo("auth")}:1`, { client }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).status).toBe(401);
    expect((err as AuthError).code).toBe("UNAUTHORIZED");
  });

  it("pushes and pulls with the auths entry of $DOCKER_CONFIG/config.json", async () => {
    const auth = Buffer.from(`${TEST_REGISTRY_USER.username}:${TEST_REGISTRY_USER.password}`).toString("base64");
    await writeFile(path.join(configDir, "config.json"), JSON.stringify({ auths: { [`http://${authHost}`]: { auth } } }));
    process.env.DOCKER_CONFIG = configDir;
    const client = new RegistryClient(); // default credential source reads $DOCKER_CONFIG
    const ref = `${authHost}/${uniqueRepo("auth")}:1`;
    await pushImage(image, srcStore, ref, { client });
    const pulled = await pullImage(ref, await freshStore("pull-auth"), { client });
    expect(pulled.manifestDescriptor.digest).toBe(image.manifestDescriptor.digest);
  });

  it("asks a docker-credential helper named by credsStore", async () => {
    const bin = await mkdtemp(path.join(tmp, "bin-"));
    const helper = path.join(bin, "docker-credential-kilntest");
    const answer = JSON.stringify({ ServerURL: authHost, Username: TEST_REGISTRY_USER.username, Secret: TEST_REGISTRY_USER.password });
    // Answers only for the test registry, like a real helper with one stored login.
    await writeFile(
      helper,
      `#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = "${authHost}" ]; then echo '${answer}'; else echo "credentials not found in native keychain"; exit 1; fi\n`,
    );
    await chmod(helper, 0o755);
    process.env.PATH = `${bin}:${savedEnv.PATH ?? ""}`;
    await writeFile(path.join(configDir, "config.json"), JSON.stringify({ credsStore: "kilntest" }));
    const client = new RegistryClient({ credentials: dockerConfigCredentials(configDir) });
    const resolved = await resolveImage(`${authHost}/${uniqueRepo("helper")}:1`, { client }).catch((e: unknown) => e);
    // Authenticated: the registry now says the manifest is unknown instead of 401.
    expect((resolved as { status?: number }).status).toBe(404);
    const ref = `${authHost}/${uniqueRepo("helper")}:1`;
    await pushImage(image, srcStore, ref, { client });
    expect((await resolveImage(ref, { client })).manifestDigest).toBe(image.manifestDescriptor.digest);
  });
});

describe("interoperability", () => {
  it("skopeo inspects what kiln pushed", async () => {
    const skopeo = requireTool("skopeo");
    const image = await makeImage(srcStore, [{ "bin/tool": randomBytes(2000) }]);
    const ref = `${host}/${uniqueRepo("skopeo")}:1`;
    await pushImage(image, srcStore, ref, { client: new RegistryClient({ credentials: anonymous }) });
    const { stdout } = await run(skopeo, ["inspect", "--tls-verify=false", `docker://${ref}`]);
    const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string };
    expect(info.Digest).toBe(image.manifestDescriptor.digest);
    expect(info.Layers).toEqual(image.manifest.layers.map((l) => l.digest));
    const raw = await run(skopeo, ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`]);
    expect(sha256(Buffer.from(raw.stdout))).toBe(image.manifestDescriptor.digest);
  });

  it("pulls the busybox base image that docker pushed", async () => {
    const { busybox } = await ensureBaseImages();
    const skopeo = requireTool("skopeo");
    const store = await freshStore("pull-busybox");
    const events: TransferEvent[] = [];
    const pulled = await pullImage(busybox, store, { client: new RegistryClient({ credentials: anonymous }), onProgress: (e) => events.push(e) });
    const { stdout } = await run(skopeo, ["inspect", "--tls-verify=false", `docker://${busybox}`]);
    const info = JSON.parse(stdout) as { Digest: string; Layers: string[] };
    expect(pulled.manifestDescriptor.digest).toBe(info.Digest);
    expect(pulled.manifest.layers.map((l) => l.digest)).toEqual(info.Layers);
    expect(pulled.config.rootfs.diff_ids).toHaveLength(info.Layers.length);
    for (const layer of pulled.manifest.layers) expect(await store.verify(layer.digest)).toBe(true);
    expect(events.filter((e) => e.type === "done")).toHaveLength(info.Layers.length + 1);
  }, 600_000);

  it("copies registry → OCI layout → registry", async () => {
    const skopeo = requireTool("skopeo");
    const client = new RegistryClient({ credentials: anonymous });
    const image = await makeImage(srcStore, [{ one: "1" }, { two: randomBytes(3000) }]);
    const from = `${host}/${uniqueRepo("layout-src")}:v2`;
    await pushImage(image, srcStore, from, { client });
    const dir = path.join(tmp, "layout");
    await copyImageToLayout(from, dir, { client, store: await freshStore("layout-store") });
    expect((await readdir(path.join(dir, "blobs", "sha256"))).sort()).toEqual(
      [image.manifestDescriptor.digest, image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)].map((d) => d.slice(7)).sort(),
    );
    const index = JSON.parse(await readFile(path.join(dir, "index.json"), "utf8")) as ImageIndex;
    expect(index.manifests[0]?.digest).toBe(image.manifestDescriptor.digest);
    // skopeo reads the layout kiln wrote.
    const { stdout } = await run(skopeo, ["inspect", `oci:${dir}:v2`]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(image.manifestDescriptor.digest);

    const fromLayout = await readLayoutImage(dir, { name: "v2" });
    expect(fromLayout.manifestDescriptor.digest).toBe(image.manifestDescriptor.digest);
    const to = parseReference(`${host}/${uniqueRepo("layout-dst")}:copied`);
    const pushed = await pushLayout(dir, to, { client, name: "v2" });
    expect(pushed.uploaded).toHaveLength(3);
    expect((await resolveImage(to, { client })).manifestDigest).toBe(image.manifestDescriptor.digest);
  });
});
