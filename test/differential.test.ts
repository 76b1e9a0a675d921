// Differential tests: the same Dockerfile and context built by dockerd's BuildKit and by kiln must give the
// same config fields and the same files (path, type, mode, owner, content, link target).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { copyFile, mkdtemp, mkdir, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { build, openStore, type KilnStore } from "@kiln/core";
import { dockerBuild, dockerSave } from "./support/docker.js";
import { loadImage, diffImages } from "./support/image-fs.js";
import { requireTool } from "./support/tools.js";

let work: string;
let store: KilnStore;
let caseNo = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-diff-"));
  store = await openStore(path.join(work, "store"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

type Files = Record<string, string | { content: string; mode?: number } | { symlink: string }>;

async function makeContext(dockerfile: string, files: Files): Promise<string> {
  const dir = path.join(work, `ctx-${++caseNo}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "Dockerfile"), dockerfile);
  for (const [rel, spec] of Object.entries(files)) {
    const abs = path.join(dir, rel);
    await mkdir(path.dirname(abs), { recursive: true });
    if (typeof spec === "string") await writeFile(abs, spec);
    else if ("symlink" in spec) await symlink(spec.symlink, abs);
    else {
      await writeFile(abs, spec.content);
      if (spec.mode !== undefined) await chmod(abs, spec.mode);
    }
  }
  return dir;
}

/** Builds with both tools and returns the differences (empty when they agree). */
async function compare(dockerfile: string, files: Files, opts: { buildArgs?: Record<string, string>; target?: string; ignorePaths?: (string | RegExp)[] } = {}): Promise<string[]> {
  const context = await makeContext(dockerfile, files);
  const tag = `kiln-diff-${caseNo}:latest`;
  await dockerBuild(context, { tag, ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}), ...(opts.target ? { target: opts.target } : {}) });
  const dockerArchive = path.join(work, `docker-${caseNo}.tar`);
  await dockerSave(tag, dockerArchive);
  const kilnArchive = path.join(work, `kiln-${caseNo}.tar`);
  await build({
    context,
    store,
    tags: [tag],
    outputs: [{ type: "docker", dest: kilnArchive }],
    ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
    ...(opts.target ? { target: opts.target } : {}),
  }).result;
  const [reference, ours] = await Promise.all([loadImage(dockerArchive), loadImage(kilnArchive)]);
  return diffImages(reference, ours, { labels: ["buildkit", "kiln"], ...(opts.ignorePaths ? { ignorePaths: opts.ignorePaths } : {}) });
}

const BUSYBOX_PRELUDE = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
`;

/** Both tools start from the same busybox rootfs without a registry: FROM scratch + the static binary. */
async function withBusybox(dockerfile: string, files: Files): Promise<string[]> {
  const context = await makeContext(BUSYBOX_PRELUDE + dockerfile, files);
  await copyFile(requireTool("busybox"), path.join(context, "busybox"));
  return compareContext(context, {});
}

/**
 * Docker 20.10's BuildKit leaves an empty /etc behind when it had to create one for its /etc/hosts mount
 * stub; current BuildKit removes such stubs recursively, as kiln does. That directory is not compared.
 */
const ETC_STUB = [/^\/etc$/];

async function compareContext(context: string, opts: { buildArgs?: Record<string, string>; target?: string }): Promise<string[]> {
  const tag = `kiln-diff-${caseNo}:latest`;
  await dockerBuild(context, { tag, ...opts });
  const dockerArchive = path.join(work, `docker-${caseNo}.tar`);
  await dockerSave(tag, dockerArchive);
  const kilnArchive = path.join(work, `kiln-${caseNo}.tar`);
  await build({ context, store, tags: [tag], outputs: [{ type: "docker", dest: kilnArchive }], ...opts }).result;
  const [reference, ours] = await Promise.all([loadImage(dockerArchive), loadImage(kilnArchive)]);
  const stubOnly = reference.files.get("/etc")?.type === "dir" && ![...reference.files.keys()].some((k) => k.startsWith("/etc/"));
  return diffImages(reference, ours, { labels: ["buildkit", "kiln"], ...(stubOnly ? { ignorePaths: ETC_STUB } : {}) });
}

describe("differential: kiln vs dockerd's BuildKit", () => {
  it("metadata instructions give the same config", async () => {
    const diff = await compare(
      `FROM scratch
ARG VERSION=1.2.3
ENV APP_HOME=/opt/app PATH=/opt/app/bin:$PATH
ENV LEGACY value with spaces
LABEL org.example.version=$VERSION "with space"="yes"
MAINTAINER someone@example.com
EXPOSE 80 443/tcp 53/udp 8000-8002
VOLUME /data ["/logs", "/cache"]
USER 1000:1000
WORKDIR /opt/app
WORKDIR sub/../lib
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD ["/bin/check"]
SHELL ["/bin/bash", "-c"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/app"]
CMD serve --port 80
`,
      {},
    );
    expect(diff).toEqual([]);
  });

  it("COPY follows Docker's destination rules", async () => {
    const diff = await compare(
      `FROM scratch
COPY a.txt /new-file
COPY a.txt /dir/
COPY a.txt b.txt /multi/
COPY src /copied-src
COPY src/ /into-existing/
COPY src/* /wild/
COPY --chown=1234:5678 a.txt /owned/
COPY --chmod=0755 b.txt /exec/b.sh
COPY link /link-copied
COPY src/nested /dir
WORKDIR /work
COPY a.txt .
COPY a.txt relative/
`,
      {
        "a.txt": "A\n",
        "b.txt": "B\n",
        "src/one": "1\n",
        "src/two": { content: "2\n", mode: 0o600 },
        "src/nested/deep/file": "deep\n",
        "src/nested/x.sh": { content: "#!/bin/sh\n", mode: 0o755 },
        link: { symlink: "a.txt" },
      },
    );
    expect(diff).toEqual([]);
  });

  it(".dockerignore hides files from COPY . .", async () => {
    const diff = await compare(
      `FROM scratch
COPY . /app/
`,
      {
        ".dockerignore": "*.log\nnode_modules\n!node_modules/keep.txt\nsecret/\n**/*.tmp\n",
        "index.js": "console.log(1)\n",
        "debug.log": "x\n",
        "node_modules/dep/index.js": "dep\n",
        "node_modules/keep.txt": "keep\n",
        "secret/key": "k\n",
        "lib/a.tmp": "t\n",
        "lib/a.js": "a\n",
      },
    );
    expect(diff).toEqual([]);
  });

  it("ADD extracts local tar archives and copies other files", async () => {
    const context = await makeContext(
      `FROM scratch
ADD bundle.tar.gz /opt/
ADD plain.txt /opt/plain.txt
`,
      { "plain.txt": "plain\n", "payload/bin/tool": { content: "#!/bin/sh\n", mode: 0o755 }, "payload/etc/conf": "c=1\n" },
    );
    execFileSync("tar", ["-czf", path.join(context, "bundle.tar.gz"), "-C", path.join(context, "payload"), "--owner=42", "--group=43", "."]);
    await rm(path.join(context, "payload"), { recursive: true });
    expect(await compareContext(context, {})).toEqual([]);
  });

  it("RUN: deletions, replacements, links, fifos, setuid and users", async () => {
    const diff = await withBusybox(
      `RUN mkdir -p /etc /data/dir /data/other && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd \\
 && echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && printf 'root:x:0:\\napp:x:1000:\\n' > /etc/group \\
 && echo one > /data/file && echo two > /data/dir/inner && echo three > /data/other/f
RUN rm /data/file && rm -rf /data/dir && echo now-a-file > /data/dir && ln -s /data/dir /data/other/f2 \\
 && rm /data/other/f && ln /data/dir /data/hard && mkfifo /data/fifo && cp /bin/busybox /data/suid && chmod 4755 /data/suid
RUN rm -rf /data/other && mkdir /data/other && echo fresh > /data/other/new
USER app
WORKDIR /home/app/work
RUN echo "I am $(id -u):$(id -g)" > whoami && touch /tmp/x || true
USER root
RUN chown app:app /data/other/new && chmod 0640 /data/other/new
`,
      {},
    );
    expect(diff).toEqual([]);
  });

  it("multi-stage: builder/runtime, --target, COPY --from by name and index", async () => {
    const dockerfile = `${BUSYBOX_PRELUDE}
FROM busybox AS builder
ARG MESSAGE=built
RUN mkdir -p /out && echo "$MESSAGE" > /out/artifact && chown 1000:1000 /out/artifact

FROM builder AS middle
RUN echo middle > /out/middle

FROM scratch AS runtime
COPY --from=builder /out/artifact /app/artifact
COPY --from=0 /bin/busybox /bin/busybox
ENTRYPOINT ["/bin/busybox"]
`;
    const context = await makeContext(dockerfile, {});
    await copyFile(requireTool("busybox"), path.join(context, "busybox"));
    expect(await compareContext(context, { buildArgs: { MESSAGE: "hello" } })).toEqual([]);
    expect(await compareContext(context, { target: "middle" })).toEqual([]);
  });

  it("ARG in FROM lines, redeclared ARGs and ONBUILD triggers", async () => {
    const dockerfile = `ARG STAGE=busybox
ARG GREETING=hi
${BUSYBOX_PRELUDE}
FROM \${STAGE} AS parent
ONBUILD RUN echo "triggered in child" > /onbuild.txt
ONBUILD ENV FROM_TRIGGER=yes
RUN echo parent > /parent.txt

FROM parent AS child
ARG GREETING
RUN echo "\$GREETING" > /greeting.txt
`;
    const context = await makeContext(dockerfile, {});
    await copyFile(requireTool("busybox"), path.join(context, "busybox"));
    expect(await compareContext(context, { buildArgs: { GREETING: "hello" } })).toEqual([]);
  });
});

