/**
 * Base images for tests, built locally and pushed to the test registry (there is no Docker Hub here):
 *   127.0.0.1:5000/kiln-test/busybox:latest      FROM scratch + Debian's busybox-static + passwd/group
 *   127.0.0.1:5000/kiln-test/debian:bookworm     debootstrap --variant=minbase, imported
 *   127.0.0.1:5000/kiln-test/debian-node:bookworm  the above + apt's nodejs and npm
 * Each is built once per registry storage dir: the registry is asked first. The debootstrap rootfs is
 * cached as a tarball under cacheDir() so it is fetched once per machine.
 */
import { createReadStream } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { dockerBuild, dockerCommand } from "./docker.js";
import { ServiceError } from "./errors.js";
import { probe } from "./http.js";
import { withLock } from "./lock.js";
import { cacheDir, dataDir } from "./paths.js";
import { run } from "./process.js";
import { ensureRegistry, type EnsureOptions } from "./services.js";
import { requireTool } from "./tools.js";

export interface BaseImages {
  busybox: string;
}

const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** True when the registry already serves this reference ("host/name:tag"). */
export async function registryHasImage(ref: string): Promise<boolean> {
  const slash = ref.indexOf("/");
  const colon = ref.lastIndexOf(":");
  const host = ref.slice(0, slash);
  const name = ref.slice(slash + 1, colon);
  const tag = ref.slice(colon + 1);
  const res = await probe({
    method: "HEAD",
    url: `http://${host}/v2/${name}/manifests/${tag}`,
    headers: { accept: MANIFEST_ACCEPT },
  });
  return res?.status === 200;
}

async function ensureImage(ref: string, build: () => Promise<void>, opts: EnsureOptions): Promise<string> {
  await ensureRegistry(opts);
  if (await registryHasImage(ref)) return ref;
  return withLock(
    `image-${ref.replace(/[^a-zA-Z0-9.-]+/g, "_")}`,
    async () => {
      if (await registryHasImage(ref)) return ref;
      await build();
      const { docker, env } = await dockerCommand(opts);
      await run(docker, ["push", ref], { env, signal: opts.signal });
      if (!(await registryHasImage(ref))) throw new ServiceError("base images", `${ref} missing after push`);
      return ref;
    },
    { signal: opts.signal },
  );
}

async function stagingDir(prefix: string): Promise<string> {
  const base = path.join(dataDir(), "tmp");
  await mkdir(base, { recursive: true });
  return mkdtemp(path.join(base, prefix));
}

/** Static binaries have no PT_INTERP program header; a dynamic busybox would not run FROM scratch. */
async function isStaticElf(file: string): Promise<boolean> {
  const fh = await open(file, "r");
  try {
    const hdr = Buffer.alloc(64);
    await fh.read(hdr, 0, 64, 0);
    if (hdr.readUInt32BE(0) !== 0x7f454c46 || hdr[4] !== 2) return false; // ELF64 only
    const phoff = Number(hdr.readBigUInt64LE(0x20));
    const phentsize = hdr.readUInt16LE(0x36);
    const phnum = hdr.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false;
    return true;
  } finally {
    await fh.close();
  }
}

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "app:x:1000:1000:app:/home/app:/bin/sh",
].join("\n");
const GROUP = ["root:x:0:", "nobody:x:65534:", "app:x:1000:"].join("\n");

async function buildBusybox(ref: string, opts: EnsureOptions): Promise<void> {
  const busybox = requireTool("busybox");
  if (!(await isStaticElf(busybox))) {
    throw new ServiceError("base images", `${busybox} is not statically linked: install busybox-static`);
  }
  const dir = await stagingDir("busybox-");
  try {
    const root = path.join(dir, "rootfs");
    for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "home/app", "var", "dev", "proc", "sys"]) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    await copyFile(busybox, path.join(root, "bin/busybox"));
    await chmod(path.join(root, "bin/busybox"), 0o755);
    // Equivalent of `busybox --install -s`, done on the host: one absolute symlink per applet.
    const { stdout } = await run(busybox, ["--list-full"]);
    for (const applet of stdout.split("\n").map((l) => l.trim()).filter(Boolean)) {
      if (applet === "bin/busybox") continue;
      await mkdir(path.dirname(path.join(root, applet)), { recursive: true });
      await symlink("/bin/busybox", path.join(root, applet));
    }
    await writeFile(path.join(root, "etc/passwd"), PASSWD + "\n");
    await writeFile(path.join(root, "etc/group"), GROUP + "\n");
    await writeFile(
      path.join(dir, "Dockerfile"),
      [
        "FROM scratch",
        "COPY rootfs/ /",
        // COPY cannot set per-path owners or the sticky bit portably; busybox is in place now.
        "RUN chmod 1777 /tmp && chmod 700 /root && chown 1000:1000 /home/app",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["sh"]',
        "",
      ].join("\n"),
    );
    await dockerBuild(dir, { tag: ref, signal: opts.signal });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Push the busybox base image if the registry lacks it; returns its reference. */
export async function ensureBusyboxImage(opts: EnsureOptions = {}): Promise<string> {
  const { host } = await ensureRegistry(opts);
  const ref = `${host}/kiln-test/busybox:latest`;
  return ensureImage(ref, () => buildBusybox(ref, opts), opts);
}

/** Every base image that is cheap to make (seconds). Debian ones are separate and lazy. */
export async function ensureBaseImages(opts: EnsureOptions = {}): Promise<BaseImages> {
  return { busybox: await ensureBusyboxImage(opts) };
}

/** The Debian mirror apt uses on this machine (deb.debian.org unless configured otherwise). */
export async function debianMirror(): Promise<string> {
  if (process.env.KILN_TEST_DEBIAN_MIRROR) return process.env.KILN_TEST_DEBIAN_MIRROR;
  const files = ["/etc/apt/sources.list"];
  for (const f of await readdir("/etc/apt/sources.list.d").catch(() => [] as string[])) {
    files.push(path.join("/etc/apt/sources.list.d", f));
  }
  for (const file of files) {
    const text = await readFile(file, "utf8").catch(() => "");
    // One-line format: "deb [opts] URI suite components"; deb822: "URIs: URI" — pick the first whose
    // path ends in /debian (not -security, not third-party repos).
    for (const m of text.matchAll(/^(?:deb(?:\s+\[[^\]]*\])?\s+|URIs:\s*)(\S+)/gm)) {
      const uri = m[1]!;
      if (/\/debian\/?$/.test(uri)) return uri.replace(/\/$/, "");
    }
  }
  return "http://deb.debian.org/debian";
}

/** debootstrap --variant=minbase bookworm, cached as a rootfs tarball; returns the tarball path. */
export async function debootstrapTarball(opts: EnsureOptions = {}): Promise<string> {
  const tarball = path.join(cacheDir(), "debian-bookworm-minbase.tar");
  const exists = async (): Promise<boolean> => (await stat(tarball).catch(() => undefined))?.isFile() ?? false;
  if (await exists()) return tarball;
  return withLock(
    "debootstrap",
    async () => {
      if (await exists()) return tarball;
      const debootstrap = requireTool("debootstrap");
      await mkdir(cacheDir(), { recursive: true });
      const dir = await mkdtemp(path.join(cacheDir(), "debootstrap-"));
      try {
        const root = path.join(dir, "rootfs");
        await run(debootstrap, ["--variant=minbase", "bookworm", root, await debianMirror()], { signal: opts.signal });
        // Like Debian's official images: no package caches or lists, no device nodes.
        await run("sh", [
          "-c",
          'cd "$1" && rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* dev/* proc/* sys/* tmp/* var/log/*.log debootstrap',
          "sh",
          root,
        ]);
        const partial = path.join(dir, "rootfs.tar");
        await run("tar", ["-C", root, "--numeric-owner", "--xattrs", "-cf", partial, "."], { signal: opts.signal });
        await rename(partial, tarball);
        return tarball;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    { signal: opts.signal },
  );
}

/** Debian bookworm minbase in the registry; returns its reference. */
export async function ensureDebianImage(opts: EnsureOptions = {}): Promise<string> {
  const { host } = await ensureRegistry(opts);
  const ref = `${host}/kiln-test/debian:bookworm`;
  return ensureImage(
    ref,
    async () => {
      const tarball = await debootstrapTarball(opts);
      const { docker, env } = await dockerCommand(opts);
      await run(
        docker,
        [
          "import",
          "--change",
          "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "--change",
          'CMD ["bash"]',
          "-",
          ref,
        ],
        { env, input: createReadStream(tarball), signal: opts.signal },
      );
    },
    opts,
  );
}

/** Debian bookworm with apt's nodejs and npm; returns its reference. */
export async function ensureDebianNodeImage(opts: EnsureOptions = {}): Promise<string> {
  const base = await ensureDebianImage(opts);
  const ref = base.replace("/kiln-test/debian:", "/kiln-test/debian-node:");
  return ensureImage(
    ref,
    async () => {
      const dir = await stagingDir("debian-node-");
      try {
        await writeFile(
          path.join(dir, "Dockerfile"),
          [
            `FROM ${base}`,
            // The debootstrap sources.list points at the host's mirror over plain http (no CA bundle needed).
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \\",
            "    && rm -rf /var/lib/apt/lists/*",
            "",
          ].join("\n"),
        );
        await dockerBuild(dir, { tag: ref, signal: opts.signal });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    opts,
  );
}

