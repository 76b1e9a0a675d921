import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { readLayerTar } from "@kiln/snapshot";
import type { ImageConfig } from "@kiln/core";
import { makeFixture, stepEnds, type Fixture } from "./support/build-fixture.js";

const DOCKERFILE = `FROM scratch
ARG VERSION=1.0
LABEL version=$VERSION title="hello kiln"
ENV SITE_ROOT=/srv/site
WORKDIR $SITE_ROOT
COPY site/ ./
COPY --chown=7:8 --chmod=0600 NOTICE /usr/share/doc/hello/
EXPOSE 8080 53/udp 9000-9001
USER 1000:1000
ENTRYPOINT ["httpd"]
CMD ["-f", "-p", "8080"]
`;

async function layerFiles(f: Fixture, digest: string): Promise<Map<string, { type: string; mode: number; uid: number; gid: number; content?: string }>> {
  const out = new Map<string, { type: string; mode: number; uid: number; gid: number; content?: string }>();
  for await (const { entry, body } of readLayerTar(f.store.blobs.createReadStream(digest as `sha256:${string}`))) {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    const rec: { type: string; mode: number; uid: number; gid: number; content?: string } = { type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid };
    if (entry.type === "file") rec.content = Buffer.concat(chunks).toString();
    out.set(entry.path, rec);
  }
  return out;
}

describe("build engine: COPY and metadata steps", () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await makeFixture({
      Dockerfile: DOCKERFILE,
      "site/index.html": "<h1>hi</h1>\n",
      "site/css/site.css": "body{}\n",
      NOTICE: "notice\n",
    });
  });
  afterEach(async () => f.cleanup());

  it("builds the config and layers BuildKit would", async () => {
    const { result } = await f.build({ tags: ["hello:1"] });
    const config: ImageConfig = result.image.config;
    expect(config.config).toMatchObject({
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SITE_ROOT=/srv/site"],
      WorkingDir: "/srv/site",
      Labels: { version: "1.0", title: "hello kiln" },
      ExposedPorts: { "8080/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {} },
      User: "1000:1000",
      Entrypoint: ["httpd"],
      Cmd: ["-f", "-p", "8080"],
    });
    expect(config.rootfs.diff_ids).toHaveLength(3);
    expect(result.image.manifest.layers).toHaveLength(3);
    const history = config.history!.map((h) => [h.created_by, h.empty_layer ?? false]);
    expect(history).toEqual([
      ["ARG VERSION=1.0", true],
      ["LABEL version=1.0 title=hello kiln", true],
      ["ENV SITE_ROOT=/srv/site", true],
      ["WORKDIR /srv/site", false],
      ["COPY site/ ./ # buildkit", false],
      ["COPY --chown=7:8 --chmod=0600 NOTICE /usr/share/doc/hello/ # buildkit", false],
      ["EXPOSE [53/udp 8080/tcp 9000/tcp 9001/tcp]", true],
      ["USER 1000:1000", true],
      ['ENTRYPOINT ["httpd"]', true],
      ['CMD ["-f" "-p" "8080"]', true],
    ]);
    expect(result.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await f.store.tags.get("docker.io/library/hello:1")).toMatchObject({ digest: result.manifestDigest });

    const workdirLayer = await layerFiles(f, result.image.manifest.layers[0]!.digest);
    expect([...workdirLayer.keys()]).toEqual(["srv", "srv/site"]);
    const site = await layerFiles(f, result.image.manifest.layers[1]!.digest);
    expect(site.get("srv/site/index.html")).toMatchObject({ type: "file", uid: 0, gid: 0, content: "<h1>hi</h1>\n" });
    expect(site.get("srv/site/css")).toMatchObject({ type: "dir" });
    const notice = await layerFiles(f, result.image.manifest.layers[2]!.digest);
    expect(notice.get("usr/share/doc/hello/NOTICE")).toMatchObject({ mode: 0o600, uid: 7, gid: 8, content: "notice\n" });
  });

  it("hits every step on a rebuild with nothing changed, with the same image ID", async () => {
    const first = await f.build();
    const second = await f.build();
    expect(stepEnds(second.events).every((e) => e.cached)).toBe(true);
    expect(second.result.imageId).toBe(first.result.imageId);
  });

  it("rebuilds only the step whose file changed and the ones after it, and says why", async () => {
    const first = await f.build();
    await f.write("site/css/site.css", "body{color:red}\n");
    const second = await f.build();
    const ends = stepEnds(second.events);
    const byText = new Map(ends.map((e) => [e.step.instruction, e]));
    for (const text of ["FROM scratch", "ARG VERSION=1.0", "WORKDIR $SITE_ROOT"]) expect(byText.get(text)?.cached, text).toBe(true);
    expect(byText.get("COPY site/ ./")?.cached).toBe(false);
    expect(byText.get("COPY site/ ./")?.miss).toEqual({ kind: "files-changed", added: [], removed: [], changed: ["site/css/site.css"] });
    const notice = byText.get("COPY --chown=7:8 --chmod=0600 NOTICE /usr/share/doc/hello/");
    expect(notice?.cached).toBe(false);
    expect(notice?.miss).toEqual({ kind: "parent-changed" });
    // The unchanged COPY produces the same layer bytes again.
    expect(second.result.image.manifest.layers[2]!.digest).toBe(first.result.image.manifest.layers[2]!.digest);
    expect(second.result.imageId).not.toBe(first.result.imageId);
  });

  it("explains a changed build arg, an added file and an edited instruction", async () => {
    await f.build();
    const args = await f.build({ buildArgs: { VERSION: "2.0" } });
    const argStep = stepEnds(args.events).find((e) => e.step.instruction === "ARG VERSION=1.0");
    expect(argStep?.miss).toEqual({ kind: "build-args-changed", changed: [{ name: "VERSION", previous: "1.0", current: "2.0" }] });
    expect(args.result.image.config.config?.Labels?.["version"]).toBe("2.0");

    await f.write("site/new.txt", "new\n");
    const added = await f.build({ buildArgs: { VERSION: "2.0" } });
    const copyStep = stepEnds(added.events).find((e) => e.step.instruction === "COPY site/ ./");
    expect(copyStep?.miss).toEqual({ kind: "files-changed", added: ["site/new.txt"], removed: [], changed: [] });

    await f.write("Dockerfile", DOCKERFILE.replace("ENV SITE_ROOT=/srv/site", "ENV SITE_ROOT=/srv/www"));
    const edited = await f.build({ buildArgs: { VERSION: "2.0" } });
    const envStep = stepEnds(edited.events).find((e) => e.step.instruction === "ENV SITE_ROOT=/srv/www");
    expect(envStep?.miss).toMatchObject({ kind: "instruction-changed", previous: "ENV SITE_ROOT=/srv/site" });
  });

  it("--no-cache rebuilds everything and gives identical layers", async () => {
    const first = await f.build();
    const again = await f.build({ noCache: true, sourceDateEpoch: undefined });
    const ends = stepEnds(again.events).filter((e) => e.step.index > 1);
    expect(ends.every((e) => !e.cached && e.miss?.kind === "no-cache")).toBe(true);
    expect(again.result.image.manifest.layers.map((l) => l.digest).slice(1)).toEqual(first.result.image.manifest.layers.map((l) => l.digest).slice(1));
  });

  it("SOURCE_DATE_EPOCH makes the image reproducible in a fresh store", async () => {
    const a = await f.build({ sourceDateEpoch: 1700000000 });
    const g = await makeFixture();
    try {
      const b = await g.build({ context: f.context, sourceDateEpoch: 1700000000 });
      expect(b.result.imageId).toBe(a.result.imageId);
      expect(b.result.image.config.created).toBe("2023-11-14T22:13:20Z");
    } finally {
      await g.cleanup();
    }
  });

  it("refuses a missing source with the Dockerfile line", async () => {
    await f.write("Dockerfile", "FROM scratch\nCOPY nothing-here /x\n");
    await expect(f.build()).rejects.toThrow(/^Dockerfile:2: COPY nothing-here \/x: .*nothing-here.*not found/);
  });

  it("refuses an unknown instruction with a suggestion", async () => {
    await f.write("Dockerfile", "FROM scratch\nCOPPY a b\n");
    await expect(f.build()).rejects.toThrow("Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)");
  });
});

describe("COPY --exclude and --link", () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await makeFixture({ "app/main.js": "main\n", "app/debug.log": "log\n", "app/sub/trace.log": "t\n", "app/sub/x.js": "x\n", "base.txt": "1\n" });
  });
  afterEach(async () => f.cleanup());

  it("--exclude leaves matching files out of the layer and the key", async () => {
    await f.write("Dockerfile", "FROM scratch\nCOPY --exclude=*.log --exclude=**/*.log app/ /app/\n");
    const first = await f.build();
    const files = await layerFiles(f, first.result.image.manifest.layers[0]!.digest);
    expect([...files.keys()].sort()).toEqual(["app", "app/main.js", "app/sub", "app/sub/x.js"]);
    // Editing an excluded file does not touch the cache.
    await f.write("app/debug.log", "more\n");
    const second = await f.build();
    expect(stepEnds(second.events).every((e) => e.cached)).toBe(true);
  });

  it("a --link layer is reused when the layers below it change", async () => {
    await f.write("Dockerfile", "FROM scratch\nCOPY base.txt /base.txt\nCOPY --link app/ /app/\n");
    const first = await f.build();
    await f.write("base.txt", "2\n");
    const second = await f.build();
    const link = stepEnds(second.events).find((e) => e.step.instruction === "COPY --link app/ /app/");
    expect(link?.cached).toBe(true);
    expect(second.result.image.manifest.layers[1]!.digest).toBe(first.result.image.manifest.layers[1]!.digest);
    expect(second.result.image.manifest.layers[0]!.digest).not.toBe(first.result.image.manifest.layers[0]!.digest);
  });
});
