/** The real services the differential tests rely on: dockerd + BuildKit, docker-registry, base images. */
import { describe, expect, it } from "vitest";
import { ensureBusyboxImage, ensureDebianNodeImage, registryHasImage } from "./support/base-images.js";
import { docker } from "./support/docker.js";
import { MissingToolError } from "./support/errors.js";
import { basicAuth, httpRequest } from "./support/http.js";
import { run } from "./support/process.js";
import { ensureDockerd, ensureRegistry, requireTool, TEST_REGISTRY_USER } from "./support/services.js";

describe("requireTool", () => {
  it("returns the path of an installed tool", () => {
    expect(requireTool("tar")).toMatch(/\/tar$/);
  });
  it("names the Debian package of a missing tool", () => {
    expect(() => requireTool("kiln-no-such-tool")).toThrow(MissingToolError);
    expect(() => requireTool("kiln-no-such-tool")).toThrow(/apt-get install -y kiln-no-such-tool/);
  });
});

describe("dockerd", () => {
  it("starts once and is shared by concurrent callers", async () => {
    const [a, b] = await Promise.all([ensureDockerd(), ensureDockerd()]);
    expect(a.pid).toBe(b.pid);
    expect(a.dockerHost).toBe(`unix://${a.socketPath}`);
    const version = JSON.parse(await docker(["version", "--format", "{{json .Server}}"])) as { Version: string };
    expect(version.Version).toMatch(/^\d+\./);
    const info = JSON.parse(await docker(["info", "--format", "{{json .}}"])) as { DockerRootDir: string };
    expect(info.DockerRootDir).toBe(a.dataRoot);
  });
});

describe("docker-registry", () => {
  it("serves the distribution API on 127.0.0.1:5000 without auth", async () => {
    const reg = await ensureRegistry();
    expect(reg.host).toBe("127.0.0.1:5000");
    const res = await httpRequest({ url: `${reg.url}/v2/` });
    expect(res.status).toBe(200);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  it("requires the test user's password on 127.0.0.1:5001", async () => {
    const reg = await ensureRegistry({ auth: "htpasswd" });
    expect(reg.host).toBe("127.0.0.1:5001");
    expect((await httpRequest({ url: `${reg.url}/v2/` })).status).toBe(401);
    const wrong = basicAuth(TEST_REGISTRY_USER.username, "not-the-password");
    expect((await httpRequest({ url: `${reg.url}/v2/`, headers: { authorization: wrong } })).status).toBe(401);
    const right = basicAuth(TEST_REGISTRY_USER.username, TEST_REGISTRY_USER.password);
    expect((await httpRequest({ url: `${reg.url}/v2/`, headers: { authorization: right } })).status).toBe(200);
  });
});

describe("base images", () => {
  it("busybox: pushed, runnable, with the app user", async () => {
    const ref = await ensureBusyboxImage();
    expect(ref).toBe("127.0.0.1:5000/kiln-test/busybox:latest");
    expect(await registryHasImage(ref)).toBe(true);
    await docker(["pull", "-q", ref]);
    const out = await docker(["run", "--rm", "--network", "none", ref, "sh", "-c", "id app; stat -c %a /tmp; ls -l /bin/ls"]);
    expect(out).toContain("uid=1000(app) gid=1000(app)");
    expect(out).toContain("1777");
    expect(out).toContain("/bin/ls -> /bin/busybox");
  });

  it("busybox is visible through the authenticated registry with a real client (skopeo)", async () => {
    const ref = await ensureBusyboxImage();
    const auth = await ensureRegistry({ auth: "htpasswd" });
    const { stdout } = await run(requireTool("skopeo"), [
      "inspect",
      "--tls-verify=false",
      "--creds",
      `${TEST_REGISTRY_USER.username}:${TEST_REGISTRY_USER.password}`,
      `docker://${ref.replace("127.0.0.1:5000", auth.host)}`,
    ]);
    const inspected = JSON.parse(stdout) as { Os: string; Layers: string[] };
    expect(inspected.Os).toBe("linux");
    expect(inspected.Layers.length).toBeGreaterThan(0);
    await expect(
      run(requireTool("skopeo"), ["inspect", "--tls-verify=false", "--no-creds", `docker://${auth.host}/kiln-test/busybox:latest`]),
    ).rejects.toThrow(/unauthorized|authentication required/i);
  });

  it("debian-node: debootstrap bookworm + apt's nodejs runs", { timeout: 30 * 60_000 }, async () => {
    const ref = await ensureDebianNodeImage();
    expect(ref).toBe("127.0.0.1:5000/kiln-test/debian-node:bookworm");
    expect(await registryHasImage("127.0.0.1:5000/kiln-test/debian:bookworm")).toBe(true);
    await docker(["pull", "-q", ref]);
    const out = await docker(["run", "--rm", "--network", "none", ref, "sh", "-c", "node -e 'console.log(6*7)'; . /etc/os-release; echo $VERSION_CODENAME"]);
    expect(out.split("\n")).toEqual(["42", "bookworm", ""]);
  });
});
