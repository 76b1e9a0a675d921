// The build cache across hosts: host A exports it, host B (an empty store) imports it and gets every
// step as a hit, downloading a layer only when something needs its bytes.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { build, openStore, parseCacheFromSpec, parseCacheToSpec, RegistryClient, nodeTransport, type HttpTransport, type BuildResult } from "@kiln/core";
import { ensureRegistry } from "./support/services.js";
import { requireTool } from "./support/tools.js";

let work: string;
let ctx: string;
const run = randomBytes(4).toString("hex");

const dockerfile = (last: string) => `FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo ${run} > /x

FROM tools AS side
RUN echo side > /side

FROM tools
COPY app.txt /app.txt
COPY --from=side /side /side
RUN ${last}
`;

/** A registry client that counts blob downloads. */
function countingClient(): { client: RegistryClient; blobGets: string[] } {
  const blobGets: string[] = [];
  const transport: HttpTransport = (req) => {
    if (req.method === "GET" && /\/blobs\/sha256:/.test(req.url.pathname)) blobGets.push(req.url.pathname.split("/").at(-1)!);
    return nodeTransport(req);
  };
  return { client: new RegistryClient({ transport }), blobGets };
}

const layerDigests = (r: BuildResult) => new Set(r.steps.flatMap((s) => (s.layer ? [s.layer.digest as string] : [])));

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-cache-hosts-"));
  ctx = path.join(work, "ctx");
  await mkdir(ctx);
  await writeFile(path.join(ctx, "app.txt"), "app\n");
  await copyFile(requireTool("busybox"), path.join(ctx, "busybox"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("cache export/import between two hosts", () => {
  it("registry cache, mode=max: host B hits every step and fetches only the layers it needs", async () => {
    const { host } = await ensureRegistry();
    const ref = `${host}/kiln-test/cache-${run}:buildcache`;
    const hostA = await openStore(path.join(work, "host-a"));
    const a = await build({ context: ctx, dockerfileContent: dockerfile("echo one > /y"), store: hostA, cacheTo: [parseCacheToSpec(`type=registry,ref=${ref},mode=max,compression=uncompressed`)] }).result;
    const allLayersOfA = layerDigests(a);

    const hostB = await openStore(path.join(work, "host-b"));
    const { client, blobGets } = countingClient();
    const b = await build({ context: ctx, dockerfileContent: dockerfile("echo one > /y"), store: hostB, registryClient: client, cacheFrom: [parseCacheFromSpec(ref)] }).result;
    expect(b.steps.every((s) => s.cached)).toBe(true);
    expect(b.manifestDigest).toBe(a.manifestDigest);
    // Every step hit without a single layer download (only the cache's config came over).
    expect(blobGets.filter((d) => allLayersOfA.has(d))).toEqual([]);

    // Changing only the last RUN needs the layers under it unpacked: exactly those are downloaded.
    const b2 = await build({ context: ctx, dockerfileContent: dockerfile("echo two > /y"), store: hostB, registryClient: client, cacheFrom: [parseCacheFromSpec(ref)] }).result;
    expect(b2.steps.filter((s) => !s.cached).map((s) => s.instruction)).toEqual(["RUN echo two > /y"]);
    const needed = b2.image.manifest.layers.slice(0, -1).map((l) => l.digest as string);
    expect(new Set(blobGets.filter((d) => allLayersOfA.has(d)))).toEqual(new Set(needed));

    // Pushing B's first image next to the cache mounts its layers from the cache repository: no upload, no download.
    const gets = blobGets.length;
    const pushed = await build({
      context: ctx,
      dockerfileContent: dockerfile("echo one > /y"),
      store: await openStore(path.join(work, "host-c")),
      registryClient: client,
      cacheFrom: [parseCacheFromSpec(ref)],
      tags: [`${host}/kiln-test/cache-app-${run}:1`],
      outputs: [{ type: "registry" }],
    }).result;
    expect(pushed.pushed[0]!.uploaded).toBeLessThanOrEqual(1); // the config blob
    expect(pushed.pushed[0]!.mounted + pushed.pushed[0]!.skipped).toBeGreaterThanOrEqual(pushed.image.manifest.layers.length);
    expect(blobGets.slice(gets).filter((d) => allLayersOfA.has(d))).toEqual([]);
  }, 300_000);

  it("local cache, mode=min exports only the final image's steps and round-trips", async () => {
    const dir = path.join(work, "cache-dir");
    const a = await build({ context: ctx, dockerfileContent: dockerfile("echo local > /y"), store: await openStore(path.join(work, "local-a")), cacheTo: [parseCacheToSpec(`type=local,dest=${dir}`)] }).result;
    const b = await build({ context: ctx, dockerfileContent: dockerfile("echo local > /y"), store: await openStore(path.join(work, "local-b")), cacheFrom: [parseCacheFromSpec(`type=local,src=${dir}`)] }).result;
    const byStage = (stage: string) => b.steps.filter((s) => s.stage === stage && s.index > 1);
    // The final stage and the stage it is built FROM are in the min cache; the side stage is not.
    expect(byStage("tools").every((s) => s.cached)).toBe(true);
    // The side stage is not in a min cache, so it runs again; its output has the same content, so the
    // final stage's COPY --from=side still hits (content-keyed, as BuildKit's).
    expect(byStage("side").every((s) => !s.cached)).toBe(true);
    expect(byStage("2").every((s) => s.cached)).toBe(true);
    expect(b.manifestDigest).toBe(a.manifestDigest);
  }, 300_000);

  it("a missing cache is a warning, not an error", async () => {
    const events: string[] = [];
    const r = build({ context: ctx, dockerfileContent: dockerfile("echo w > /y"), store: await openStore(path.join(work, "warn")), cacheFrom: [parseCacheFromSpec(`type=local,src=${path.join(work, "nope")}`)] });
    r.onEvent((e) => {
      if (e.type === "warning") events.push(e.message);
    });
    await r.result;
    expect(events.join("\n")).toContain("failed to import cache");
  }, 300_000);
});
