/**
 * Tool discovery. A missing tool is always an error (never a skip): in CI that is a broken machine, on a
 * dev machine the message names the Debian package to install.
 */
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { MissingToolError } from "./errors.js";

/** Tool → Debian package that provides it. Keep in sync with the package list in .ci/run. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  dockerd: "docker.io",
  docker: "docker.io",
  containerd: "containerd",
  runc: "runc",
  "docker-registry": "docker-registry",
  skopeo: "skopeo",
  umoci: "umoci",
  busybox: "busybox-static",
  debootstrap: "debootstrap",
  newuidmap: "uidmap",
  newgidmap: "uidmap",
  tmux: "tmux",
  setfattr: "attr",
  getfattr: "attr",
  xz: "xz-utils",
  bzip2: "bzip2",
  zstd: "zstd",
  ip: "iproute2",
  tar: "tar",
  gzip: "gzip",
};

const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Absolute path of an executable, searching PATH and the sbin dirs a non-login root shell may lack. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Like findTool but throws MissingToolError naming the Debian package. */
export function requireTool(name: string): string {
  const found = findTool(name);
  if (!found) throw new MissingToolError(name, TOOL_PACKAGES[name] ?? name);
  return found;
}

/**
 * The docker CLI to drive dockerd's builtin BuildKit. Newer CLIs (23+) route `docker build` to the buildx
 * plugin and refuse DOCKER_BUILDKIT=1 without it, so prefer the docker.io package's own client, which
 * matches the daemon. KILN_TEST_DOCKER overrides.
 */
export function dockerClient(): string {
  const override = process.env.KILN_TEST_DOCKER;
  if (override) return override;
  try {
    accessSync("/usr/bin/docker", constants.X_OK);
    return "/usr/bin/docker";
  } catch {
    return requireTool("docker");
  }
}
