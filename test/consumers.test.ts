// Real consumers of kiln's outputs: docker load + docker run, skopeo, umoci.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { copyFile, mkdtemp, mkdir, readFile, rm, writeFile, readdir } from "node:fs/promises";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import os from "node:os";
import path from "node:path";
import { build, openStore, type KilnStore, type BuildResult } from "@kiln/core";
import { docker } from "./support/docker.js";
import { requireTool } from "./support/tools.js";

const exec = promisify(execFile);

let work: string;
let store: KilnStore;
let result: BuildResult;
const TAG = "kiln-consumer-test:1";

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-consumers-"));
  store = await openStore(path.join(work, "store"));
  const ctx = path.join(work, "ctx");
  await mkdir(path.join(ctx, "site"), { recursive: true });
  await copyFile(requireTool("busybox"), path.join(ctx, "busybox"));
  await writeFile(path.join(ctx, "site", "index.html"), "<h1>kiln</h1>\n");
  await writeFile(
    path.join(ctx, "Dockerfile"),
    `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
WORKDIR /srv
COPY site/ ./site/
RUN echo "built by kiln" > /srv/site/motd && mkdir -p /etc && echo 'app:x:1000:1000::/srv:/bin/sh' > /etc/passwd && echo 'app:x:1000:' > /etc/group
USER app
ENV GREETING=hello
CMD ["sh", "-c", "echo $GREETING from $(id -un) && cat /srv/site/motd"]
`,
  );
  result = await build({
    context: ctx,
    store,
    tags: [TAG],
    outputs: [
      { type: "docker", dest: path.join(work, "image-docker.tar") },
      { type: "oci", dest: path.join(work, "layout") },
      { type: "oci", dest: path.join(work, "image-oci.tar") },
    ],
  }).result;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("consumers accept kiln's images", () => {
  it("docker load + docker run", async () => {
    const loaded = await docker(["load", "-i", path.join(work, "image-docker.tar")]);
    expect(loaded).toContain(TAG);
    const inspect = JSON.parse(await docker(["image", "inspect", TAG]))[0];
    expect(inspect.Id).toBe(result.imageId);
    expect(inspect.RootFS.Layers).toEqual(result.image.config.rootfs.diff_ids);
    const out = await docker(["run", "--rm", "--network", "none", TAG]);
    expect(out).toBe("hello from app\nbuilt by kiln\n");
    await docker(["rmi", TAG]);
  });

  it("skopeo inspects the OCI layout and the OCI archive", async () => {
    const skopeo = requireTool("skopeo");
    for (const ref of [`oci:${path.join(work, "layout")}:1`, `oci-archive:${path.join(work, "image-oci.tar")}:1`]) {
      const { stdout } = await exec(skopeo, ["inspect", ref]);
      const info = JSON.parse(stdout);
      expect(info.Digest).toBe(result.manifestDigest);
      expect(info.Layers).toEqual(result.image.manifest.layers.map((l) => l.digest));
      expect(info.Env).toContain("GREETING=hello");
    }
    // skopeo can also copy it into a docker archive, re-reading and verifying every blob.
    await exec(skopeo, ["copy", `oci:${path.join(work, "layout")}:1`, `docker-archive:${path.join(work, "copied.tar")}:copied:1`]);
  });

  it("umoci unpacks the OCI layout into a runtime bundle", async () => {
    const umoci = requireTool("umoci");
    const bundle = path.join(work, "bundle");
    await exec(umoci, ["unpack", "--image", `${path.join(work, "layout")}:1`, bundle]);
    expect(await readFile(path.join(bundle, "rootfs", "srv", "site", "motd"), "utf8")).toBe("built by kiln\n");
    expect(await readFile(path.join(bundle, "rootfs", "srv", "site", "index.html"), "utf8")).toBe("<h1>kiln</h1>\n");
    const config = JSON.parse(await readFile(path.join(bundle, "config.json"), "utf8"));
    expect(config.process.cwd).toBe("/srv");
    expect(config.process.env).toContain("GREETING=hello");
    expect(await readdir(path.join(bundle, "rootfs", "bin"))).toContain("sh");
  });
});
