/**
 * The differential harness itself: images built by dockerd's BuildKit, read back from `docker save` and
 * from OCI layouts (skopeo), flattened and diffed.
 */
import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBusyboxImage } from "./support/base-images.js";
import { docker, dockerBuild, dockerSave } from "./support/docker.js";
import { ImageFormatError } from "./support/errors.js";
import { diffImages, flattenImage, loadImage, readImageArchive, type LoadedImage } from "./support/image-fs.js";
import { run } from "./support/process.js";
import { ensureRegistry, requireTool } from "./support/services.js";

let work: string;
const sha = (b: string | Buffer): string => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-image-fs-test-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function buildAndLoad(name: string, files: Record<string, string>, dockerfile: string): Promise<LoadedImage> {
  const ctx = path.join(work, name);
  await mkdir(ctx, { recursive: true });
  for (const [p, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(ctx, p)), { recursive: true });
    await writeFile(path.join(ctx, p), body);
  }
  await writeFile(path.join(ctx, "Dockerfile"), dockerfile);
  const tag = `kiln-test/harness-${name}:latest`;
  const { imageId } = await dockerBuild(ctx, { tag });
  const archive = path.join(work, `${name}.tar`);
  await dockerSave(tag, archive);
  const image = await loadImage(archive);
  expect(image.format).toBe("docker-save");
  expect(imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
  return image;
}

describe("FROM scratch + COPY", () => {
  let image: LoadedImage;
  const appJs = "console.log('hi')\n";

  beforeAll(async () => {
    const ctx = path.join(work, "scratch");
    await mkdir(path.join(ctx, "src/lib"), { recursive: true });
    await symlink("lib/util.js", path.join(ctx, "src/util-link"));
    image = await buildAndLoad(
      "scratch",
      { "src/app.js": appJs, "src/lib/util.js": "export {}\n", "readme.txt": "r\n" },
      [
        "FROM scratch",
        "COPY src/ /app/",
        "COPY --chown=1000:1000 readme.txt /home/app/readme.txt",
        "ENV A=1 B=two",
        "WORKDIR /app",
        "USER 1000",
        'ENTRYPOINT ["/app/app.js"]',
        "EXPOSE 8080/tcp",
        'LABEL org.example.k="v"',
        "",
      ].join("\n"),
    );
  });

  it("reads config fields and one layer per non-empty history entry", () => {
    const layered = image.history.filter((h) => !h.empty_layer).map((h) => h.created_by);
    expect(layered.slice(0, 2)).toEqual(["COPY src/ /app/ # buildkit", "COPY readme.txt /home/app/readme.txt # buildkit"]);
    expect(image.layers).toHaveLength(layered.length);
    const c = image.config.config ?? {};
    expect(c.Env).toEqual(expect.arrayContaining(["A=1", "B=two"]));
    expect(c.WorkingDir).toBe("/app");
    expect(c.User).toBe("1000");
    expect(c.Entrypoint).toEqual(["/app/app.js"]);
    expect(c.ExposedPorts).toEqual({ "8080/tcp": {} });
    expect(c.Labels).toEqual({ "org.example.k": "v" });
  });

  it("flattens files with content hashes, owners and symlink targets", () => {
    expect(image.files.get("/app/app.js")).toMatchObject({ type: "file", size: appJs.length, sha256: sha(appJs), uid: 0 });
    expect(image.files.get("/app/lib")).toMatchObject({ type: "dir" });
    expect(image.files.get("/app/util-link")).toMatchObject({ type: "symlink", linkname: "lib/util.js" });
    expect(image.files.get("/home/app/readme.txt")).toMatchObject({ type: "file", uid: 1000, gid: 1000 });
    expect(image.files.has("/app/Dockerfile")).toBe(false);
  });

  it("an image equals itself; a changed copy differs in the expected lines", () => {
    expect(diffImages(image, image)).toEqual([]);
    const files = new Map(image.files);
    files.delete("/app/lib/util.js");
    files.set("/app/app.js", { ...files.get("/app/app.js")!, mode: 0o600 });
    const config = { ...image.config, config: { ...image.config.config, Cmd: ["x"], User: "1000" } };
    const diff = diffImages(image, { config, files }, { labels: ["buildkit", "kiln"] });
    expect(diff).toEqual([
      'config.Cmd: buildkit=undefined kiln=["x"]',
      "/app/app.js: mode 0644 vs 0600",
      expect.stringMatching(/^\/app\/lib\/util\.js: only in buildkit \(file 0644 0:0 10B sha256:/),
    ]);
    expect(diffImages(image, { config, files }, { ignoreConfigFields: ["Cmd"], ignorePaths: ["/app"] })).toEqual([]);
  });
});

describe("FROM busybox + RUN (whiteouts, opaque dirs, links, fifos)", () => {
  let image: LoadedImage;
  let base: LoadedImage;

  beforeAll(async () => {
    const ref = await ensureBusyboxImage();
    const baseArchive = path.join(work, "busybox.tar");
    await docker(["pull", "-q", ref]);
    await dockerSave(ref, baseArchive);
    base = await loadImage(baseArchive);
    image = await buildAndLoad(
      "busybox-run",
      {},
      [
        `FROM ${ref}`,
        "RUN mkdir -p /d/sub /keep && echo 1 > /d/sub/x && echo 2 > /d/y && echo k > /keep/k",
        "RUN rm /etc/group && ln -s /etc/passwd /lnk && mkfifo /fifo && echo same > /h1 && ln /h1 /h2",
        "RUN rm -rf /d && mkdir /d && echo new > /d/new && rm -rf /keep/k",
        "",
      ].join("\n"),
    );
  });

  it("applies deletions, opaque directories, symlinks, fifos and hard links", () => {
    expect(image.layers.length).toBe(base.layers.length + 3);
    expect(base.files.has("/etc/group")).toBe(true);
    expect(image.files.has("/etc/group")).toBe(false);
    expect(image.files.get("/lnk")).toMatchObject({ type: "symlink", linkname: "/etc/passwd" });
    expect(image.files.get("/fifo")).toMatchObject({ type: "fifo" });
    expect(image.files.get("/h2")).toEqual(image.files.get("/h1"));
    expect(image.files.get("/h1")).toMatchObject({ type: "file", sha256: sha("same\n") });
    expect(image.files.has("/d/sub")).toBe(false);
    expect(image.files.has("/d/sub/x")).toBe(false);
    expect(image.files.has("/d/y")).toBe(false);
    expect(image.files.get("/d/new")).toMatchObject({ type: "file", sha256: sha("new\n") });
    expect(image.files.get("/keep")).toMatchObject({ type: "dir" });
    expect(image.files.has("/keep/k")).toBe(false);
    expect(image.files.get("/tmp")).toMatchObject({ type: "dir", mode: 0o1777 });
    expect(image.files.get("/home/app")).toMatchObject({ uid: 1000, gid: 1000 });
    expect(image.files.get("/bin/sh")).toMatchObject({ type: "symlink", linkname: "/bin/busybox" });
  });

  it("diffs against its base list exactly what the RUNs changed", () => {
    const diff = diffImages(base, image, { labels: ["base", "run"] });
    const changed = new Set(diff.map((l) => l.split(":")[0]));
    expect(changed).toEqual(new Set(["/etc/group", "/lnk", "/fifo", "/h1", "/h2", "/d", "/d/new", "/keep"]));
    const group = "root:x:0:\nnobody:x:65534:\napp:x:1000:\n";
    expect(diff).toContain(`/etc/group: only in base (file 0644 0:0 ${group.length}B sha256:${sha(group).slice(0, 12)})`);
  });

  it("reads the same image identically from docker save, an OCI layout dir and an OCI tar (gzip and zstd)", async () => {
    const { host } = await ensureRegistry();
    const ref = `${host}/kiln-test/harness-busybox-run:latest`;
    await docker(["tag", "kiln-test/harness-busybox-run:latest", ref]);
    await docker(["push", ref]);
    const skopeo = requireTool("skopeo");
    const ociDir = path.join(work, "oci-dir");
    const ociTar = path.join(work, "oci.tar");
    const zstdDir = path.join(work, "oci-zstd");
    await run(skopeo, ["copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${ociDir}:latest`]);
    await run(skopeo, ["copy", "--src-tls-verify=false", `docker://${ref}`, `oci-archive:${ociTar}:latest`]);
    await run(skopeo, [
      "copy",
      "--src-tls-verify=false",
      "--dest-compress-format",
      "zstd",
      `docker://${ref}`,
      `oci:${zstdDir}:latest`,
    ]);
    for (const p of [ociDir, ociTar, zstdDir]) {
      const oci = await loadImage(p);
      expect(oci.format).toBe("oci-layout");
      expect(oci.layers.map((l) => l.diffID)).toEqual(image.layers.map((l) => l.diffID));
      expect(diffImages(image, oci, { history: true })).toEqual([]);
    }
    const zstd = await readImageArchive(zstdDir);
    expect(zstd.layers[0]?.mediaType).toContain("zstd");
    const gz = await readImageArchive(ociDir);
    expect(gz.layers[0]?.mediaType).toContain("gzip");
  });

  it("rejects a layer whose content does not match its diffID", async () => {
    const archive = await readImageArchive(path.join(work, "busybox-run.tar"));
    const bad = { ...archive, layers: archive.layers.map((l, i) => (i === 0 ? { ...l, diffID: "sha256:" + "0".repeat(64) } : l)) };
    await expect(flattenImage(bad)).rejects.toThrow(ImageFormatError);
  });

  it("reads an OCI layout copied elsewhere without the registry", async () => {
    const copy = path.join(work, "oci-dir-copy");
    await cp(path.join(work, "oci-dir"), copy, { recursive: true });
    const index = JSON.parse(await readFile(path.join(copy, "index.json"), "utf8")) as { manifests: unknown[] };
    expect(index.manifests).toHaveLength(1);
    const loaded = await loadImage(copy, { ref: "latest" });
    expect(diffImages(image, loaded)).toEqual([]);
  });
});
