// history / inspect / analyze on images built by hand in a temporary store: a base layer, a layer that
// overwrites a file, one with a whiteout and an opaque directory, one that deletes a directory.
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  analyzeImage,
  historyCommand,
  imageHistory,
  inspectImage,
  LayerDiffIdMismatchError,
  ImageNotFoundError,
  openImage,
  openStore,
  renderAnalysis,
  writeDockerArchive,
  writeOciLayoutDir,
  writeOciLayoutTar,
  UnsupportedSourceError,
  type KilnStore,
} from "@kiln/core";
import { opaqueEntry, whiteoutEntry } from "@kiln/snapshot";
import { buildImage, dir, file, hardlink, symlink, type BuiltImage } from "./inspect-fixtures.js";

const APP = "x".repeat(1000);
const CONF_V1 = "a".repeat(300);
const CONF_V2 = "b".repeat(450);
const BIG = "z".repeat(5000);
const SUB_X = "y".repeat(700);
const NEW = "n".repeat(2000);
const SUB_Y = "0123456789";
const SH_TARGET = "app";

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString().replace(".000Z", ".123456789Z");
const LONG_RUN = "RUN /bin/sh -c echo overwrite\t&& printf '%s' conf > /etc/conf && mkdir /data # buildkit";

let work: string;
let store: KilnStore;
let image: BuiltImage;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-inspect-test-"));
  store = await openStore(path.join(work, "store"));
  image = await buildImage(
    store,
    "docker.io/library/inspect-app:1",
    [
      [
        dir("bin"),
        file("bin/app", APP, 0o755),
        hardlink("bin/app2", "bin/app"),
        symlink("bin/sh", SH_TARGET),
        dir("etc"),
        file("etc/conf", CONF_V1),
        dir("var"),
        dir("var/cache"),
        file("var/cache/big", BIG),
        dir("var/cache/sub"),
        file("var/cache/sub/x", SUB_X),
      ],
      [dir("data"), file("data/new", NEW), dir("etc"), file("etc/conf", CONF_V2)],
      [dir("var/cache"), whiteoutEntry("var/cache/big"), dir("var/cache/sub"), opaqueEntry("var/cache/sub"), file("var/cache/sub/y", SUB_Y)],
      [whiteoutEntry("data")],
    ],
    {
      created: iso(T0 + 5000),
      runtime: { Env: ["PATH=/usr/bin:/bin", "A=1"], Cmd: ["sh"], WorkingDir: "/srv", Labels: { team: "kiln" }, ExposedPorts: { "80/tcp": {} } },
      history: [
        { created: iso(T0), created_by: "ADD base.tar / # buildkit", comment: "buildkit.dockerfile.v0" },
        { created: iso(T0 + 1000), created_by: "ENV A=1", comment: "buildkit.dockerfile.v0", empty_layer: true },
        { created: iso(T0 + 2000), created_by: LONG_RUN, comment: "buildkit.dockerfile.v0" },
        { created: iso(T0 + 3000), created_by: "RUN /bin/sh -c rm /var/cache/big && rm -rf /var/cache/sub && mkdir /var/cache/sub && echo > y # buildkit" },
        { created: iso(T0 + 4000), created_by: "RUN /bin/sh -c rm -rf /data # buildkit" },
        { created: iso(T0 + 5000), created_by: 'CMD ["sh"]', empty_layer: true },
      ],
    },
  );
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

// Docker's per-layer size: regular file content; symlinks, hardlinks, dirs and whiteouts add nothing.
const layerSizes = (): number[] => [
  APP.length + CONF_V1.length + BIG.length + SUB_X.length,
  NEW.length + CONF_V2.length,
  SUB_Y.length,
  0,
];

describe("history", () => {
  it("pairs non-empty history entries with layers and lists them newest first", async () => {
    const { image: opened, rows } = await imageHistory("inspect-app:1", { store });
    expect(opened.id).toBe(image.manifest.config.digest);
    expect(rows.map((r) => r.layer)).toEqual([0, undefined, 1, 2, 3, undefined]);
    expect(rows.map((r) => r.size)).toEqual([layerSizes()[0], 0, layerSizes()[1], layerSizes()[2], 0, 0]);
    expect(rows.map((r) => r.created)).toEqual([0, 1, 2, 3, 4, 5].map((s) => (T0 + s * 1000) / 1000));

    const lines = (await historyCommand("inspect-app:1", { store, format: "json", noTrunc: true, now: new Date(T0 + 5000 + 2 * 3600_000) }))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toEqual({ Comment: "", CreatedAt: expect.any(String), CreatedBy: 'CMD ["sh"]', CreatedSince: "2 hours ago", ID: image.manifest.config.digest, Size: "0B" });
    expect(lines.slice(1).every((l) => l["ID"] === "<missing>")).toBe(true);
    expect(lines.map((l) => l["Size"])).toEqual(["0B", "0B", "10B", "2.45kB", "0B", "7kB"]);
    expect(lines[0]!["Comment"]).toBe("");
    expect(lines[3]!["CreatedBy"]).toBe(LONG_RUN.replaceAll("\t", " "));
    expect(lines[5]!["Comment"]).toBe("buildkit.dockerfile.v0");
  });

  it("truncates like the docker CLI and escapes JSON like Go", async () => {
    const json = await historyCommand("inspect-app:1", { store, format: "json", now: new Date(T0) });
    const row = json.trim().split("\n")[3]!;
    // Go's encoder writes & as \u0026 and docker truncates to 44 characters plus "…".
    expect(row).toContain("\\u0026");
    const createdBy = (JSON.parse(row) as { CreatedBy: string }).CreatedBy;
    expect(createdBy).toBe(`${LONG_RUN.replaceAll("\t", " ").slice(0, 44)}…`);
    expect((JSON.parse(json.split("\n")[0]!) as { ID: string }).ID).toBe(image.manifest.config.digest.slice(7, 19));
  });

  it("prints a docker-style table and quiet IDs", async () => {
    const table = await historyCommand("inspect-app:1", { store, now: new Date(T0 + 5000 + 3 * 86400_000) });
    const lines = table.split("\n");
    expect(lines[0]).toMatch(/^IMAGE {10}CREATED {6}CREATED BY {38}SIZE {6}COMMENT$/);
    expect(lines[1]!.startsWith(`${image.manifest.config.digest.slice(7, 19)}   3 days ago   CMD ["sh"]`)).toBe(true);
    expect(lines).toHaveLength(8);
    const quiet = await historyCommand("inspect-app:1", { store, quiet: true });
    expect(quiet.trim().split("\n")).toEqual([image.manifest.config.digest.slice(7, 19), ...Array(5).fill("<missing>")]);
    const raw = await historyCommand("inspect-app:1", { store, human: false });
    expect(raw.split("\n")[0]).toMatch(/^IMAGE +CREATED AT +CREATED BY +SIZE +COMMENT$/);
    expect(raw).toContain(String(layerSizes()[0]));
  });

  it("caches layer figures by diffID in the store", async () => {
    await historyCommand("inspect-app:1", { store });
    const hex = image.layers[1]!.diffID.slice(7);
    const cached = JSON.parse(await readFile(path.join(store.root, "layer-sizes", `${hex}.json`), "utf8")) as { size: number; tarSize: number };
    expect(cached.size).toBe(layerSizes()[1]);
    expect(cached.tarSize).toBe(image.layers[1]!.uncompressedSize);
  });
});

describe("inspect", () => {
  it("reports docker's image fields and kiln's layer descriptors", async () => {
    const doc = await inspectImage("inspect-app:1", { store });
    const config = doc["Config"] as Record<string, unknown>;
    const kiln = doc["Kiln"] as Record<string, unknown>;
    expect(doc["Id"]).toBe(image.manifest.config.digest);
    expect(doc["RepoTags"]).toEqual(["inspect-app:1"]);
    expect(doc["RepoDigests"]).toEqual([`inspect-app@${image.manifestDescriptor.digest}`]);
    expect(doc["Created"]).toBe(iso(T0 + 5000));
    expect(doc["Architecture"]).toBe("amd64");
    expect(doc["Os"]).toBe("linux");
    expect(doc["Size"]).toBe(layerSizes().reduce((a, b) => a + b, 0));
    expect(doc["RootFS"]).toEqual({ Type: "layers", Layers: image.layers.map((l) => l.diffID) });
    expect(config["Env"]).toEqual(["PATH=/usr/bin:/bin", "A=1"]);
    expect(config["Cmd"]).toEqual(["sh"]);
    expect(config["WorkingDir"]).toBe("/srv");
    expect(config["Labels"]).toEqual({ team: "kiln" });
    expect(config["ExposedPorts"]).toEqual({ "80/tcp": {} });
    expect(config["Entrypoint"]).toBeNull();
    expect(Object.keys(config).slice(0, 7)).toEqual(["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts"]);
    expect(kiln["ManifestDigest"]).toBe(image.manifestDescriptor.digest);
    expect(kiln["Layers"]).toEqual(
      image.layers.map((l, i) => ({ Digest: l.digest, DiffID: l.diffID, MediaType: l.mediaType, Size: l.size, UncompressedSize: l.uncompressedSize, DiskSize: layerSizes()[i] })),
    );
  });

  it("finds images by ID prefix and by digest reference", async () => {
    const byId = await openImage(image.manifest.config.digest.slice(7, 19), { store });
    expect(byId.id).toBe(image.manifest.config.digest);
    const byDigest = await openImage(`inspect-app@${image.manifestDescriptor.digest}`, { store });
    expect(byDigest.manifestDigest).toBe(image.manifestDescriptor.digest);
    await expect(openImage("no-such-image:1", { store })).rejects.toBeInstanceOf(ImageNotFoundError);
  });

  it("reads the same image from an OCI layout dir, an OCI archive and a docker archive", async () => {
    const names = ["docker.io/library/inspect-app:1"];
    await writeOciLayoutDir(image, store.blobs, path.join(work, "layout"), { names });
    await writeOciLayoutTar(image, store.blobs, path.join(work, "layout.tar"), { names });
    await writeDockerArchive(image, store.blobs, path.join(work, "docker.tar"), { names });
    const reference = await inspectImage("inspect-app:1", { store });
    for (const spec of [`oci:${work}/layout`, `oci:${work}/layout:1`, `oci-archive:${work}/layout.tar`, `docker-archive:${work}/docker.tar`, `docker-archive:${work}/docker.tar:inspect-app:1`]) {
      const doc = await inspectImage(spec, { store });
      expect(doc["Id"], spec).toBe(reference["Id"]);
      expect(doc["RepoTags"], spec).toEqual(["inspect-app:1"]);
      expect(doc["Size"], spec).toBe(reference["Size"]);
      expect(doc["RootFS"], spec).toEqual(reference["RootFS"]);
      expect(doc["Config"], spec).toEqual(reference["Config"]);
      expect((doc["Kiln"] as Record<string, unknown>)["ManifestDigest"], spec).toBe(image.manifestDescriptor.digest);
      const { rows } = await imageHistory(spec, { store });
      expect(rows.map((r) => r.size), spec).toEqual([layerSizes()[0], 0, layerSizes()[1], layerSizes()[2], 0, 0]);
    }
    await expect(openImage(`oci:${work}/layout:nope`, { store })).rejects.toBeInstanceOf(ImageNotFoundError);
    // Members are read by offset, so a compressed outer archive is refused with a clear error.
    await pipeline(createReadStream(path.join(work, "layout.tar")), createGzip(), createWriteStream(path.join(work, "layout.tar.gz")));
    await expect(openImage(`oci-archive:${work}/layout.tar.gz`, { store })).rejects.toBeInstanceOf(UnsupportedSourceError);
  });

  it("refuses a layer whose content does not match its diffID", async () => {
    const bad = await buildImage(store, "docker.io/library/inspect-bad:1", [[file("a", "1")], [file("b", "2")]], {
      created: iso(T0),
      history: [{ created_by: "a" }, { created_by: "b" }],
      diffIdOverride: [`sha256:${"0".repeat(64)}`, `sha256:${"1".repeat(64)}`],
    });
    expect(bad.layers).toHaveLength(2);
    await expect(inspectImage("inspect-bad:1", { store })).rejects.toBeInstanceOf(LayerDiffIdMismatchError);
    await expect(stat(path.join(store.root, "layer-sizes", `${"0".repeat(64)}.json`))).rejects.toThrow();
  });
});

describe("analyze", () => {
  it("counts added, changed and removed files per layer and the bytes later layers hide", async () => {
    const report = await analyzeImage("inspect-app:1", { store, top: 3 });
    const [l0, l1, l2, l3] = report.layers;
    expect(report.layers.map((l) => l.size)).toEqual(layerSizes());
    expect(l0!.added).toEqual({ count: 6, bytes: layerSizes()[0] });
    expect(l0!.changed).toEqual({ count: 0, bytes: 0 });
    expect(l1!.added).toEqual({ count: 1, bytes: NEW.length });
    expect(l1!.changed).toEqual({ count: 1, bytes: CONF_V2.length });
    expect(l2!.removed).toEqual({ count: 2, bytes: BIG.length + SUB_X.length });
    expect(l2!.added).toEqual({ count: 1, bytes: SUB_Y.length });
    expect(l3!.removed).toEqual({ count: 1, bytes: NEW.length });
    // Layer 0 pays for the old conf, big and sub/x; layer 1 for data/new.
    expect(report.layers.map((l) => l.wasted)).toEqual([CONF_V1.length + BIG.length + SUB_X.length, NEW.length, 0, 0]);
    const total = layerSizes().reduce((a, b) => a + b, 0);
    const final = APP.length + CONF_V2.length + SUB_Y.length;
    expect(report.totalBytes).toBe(total);
    expect(report.finalBytes).toBe(final);
    expect(report.wastedBytes).toBe(CONF_V1.length + BIG.length + SUB_X.length + NEW.length);
    expect(report.efficiency).toBeCloseTo(final / total, 12);
    expect(report.largestFiles).toEqual([
      { path: "bin/app", size: APP.length, layer: 0 },
      { path: "etc/conf", size: CONF_V2.length, layer: 1 },
      { path: "var/cache/sub/y", size: SUB_Y.length, layer: 2 },
    ]);
    expect(report.wastedFiles.map((w) => w.path)).toEqual(["var/cache/big", "data/new", "var/cache/sub/x"]);
    expect(report.layers[2]!.createdBy).toMatch(/^RUN \/bin\/sh -c rm \/var\/cache\/big/);

    const text = renderAnalysis(report);
    expect(text).toContain(`Efficiency:        ${((final / total) * 100).toFixed(1)}%`);
    const layerLine = text.split("\n").find((l) => l.startsWith("1 "))!;
    expect(layerLine.split(/ {2,}/)).toEqual(["1", "2.45kB", "1 (2kB)", "1 (450B)", "0 (0B)", "2kB", `${LONG_RUN.replaceAll("\t", " ").slice(0, 44)}…`]);
    const json = JSON.parse(renderAnalysis(report, { format: "json" })) as { wastedBytes: number };
    expect(json.wastedBytes).toBe(report.wastedBytes);
  });

  it("treats type changes and opaque directories as removals", async () => {
    await buildImage(
      store,
      "docker.io/library/inspect-types:1",
      [
        [file("x", "1".repeat(100)), dir("d"), file("d/f", "2".repeat(50)), dir("e"), file("e/old", "3".repeat(20))],
        [dir("x"), file("x/g", "4".repeat(5)), file("d", "5".repeat(7))],
        [dir("e"), opaqueEntry("e"), file("e/new", "6".repeat(3))],
      ],
      { created: iso(T0), history: [{ created_by: "a" }, { created_by: "b" }, { created_by: "c" }] },
    );
    const report = await analyzeImage("inspect-types:1", { store });
    const [, l1, l2] = report.layers;
    expect(l1!.removed).toEqual({ count: 2, bytes: 150 });
    expect(l1!.added).toEqual({ count: 2, bytes: 12 });
    expect(l2!.removed).toEqual({ count: 1, bytes: 20 });
    expect(l2!.added).toEqual({ count: 1, bytes: 3 });
    expect(report.layers.map((l) => l.wasted)).toEqual([170, 0, 0]);
    expect(report.finalBytes).toBe(5 + 7 + 3);
    expect(report.totalBytes).toBe(170 + 12 + 3);
    expect(report.largestFiles.map((f) => f.path)).toEqual(["d", "x/g", "e/new"]);
    const { rows } = await imageHistory("inspect-types:1", { store });
    expect(rows.map((r) => r.size)).toEqual(report.layers.map((l) => l.size));
  });
});
