// kiln history / inspect / analyze against dockerd's own view of the same image: built by dockerd's
// BuildKit, exported with `docker save`, and pushed to the test registry and read back from there.
import { copyFile, mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyzeImage, historyCommand, inspectImage, openStore, type KilnStore } from "@kiln/core";
import { ensureRegistry, requireTool } from "../../../test/support/services.js";
import { docker, dockerBuild, dockerSave } from "../../../test/support/docker.js";

const BIG_BYTES = 300 * 1024;
const TAG = "kiln-test/inspect-docker:latest";

let work: string;
let store: KilnStore;
let archive: string;
let pushed: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-inspect-docker-"));
  store = await openStore(path.join(work, "store"));
  const ctx = path.join(work, "ctx");
  await mkdir(ctx, { recursive: true });
  // FROM scratch so that dockerd's BuildKit makes every layer: dockerd sizes layers it pulls or loads
  // differently (see LayerFigures.size), and a base image may have reached it either way.
  await copyFile(requireTool("busybox"), path.join(ctx, "busybox"));
  await writeFile(path.join(ctx, "file.txt"), "copied into the image\n");
  await writeFile(
    path.join(ctx, "Dockerfile"),
    [
      "FROM scratch",
      "COPY busybox /bin/busybox",
      'SHELL ["/bin/busybox", "sh", "-c"]',
      "ENV APP_HOME=/opt/app",
      `RUN busybox mkdir -p /opt/app && busybox dd if=/dev/zero of=/opt/app/big bs=1024 count=${BIG_BYTES / 1024} 2>/dev/null && echo hi > /opt/app/small && busybox ln -s small /opt/app/link`,
      "RUN busybox rm /opt/app/big && echo changed > /opt/app/small",
      "COPY file.txt /opt/",
      "LABEL org.example.team=kiln",
      "WORKDIR /opt",
      "EXPOSE 8080",
      "USER 1000:1000",
      'CMD ["/bin/busybox", "sh", "-c", "echo <hello> && sleep 1"]',
      "",
    ].join("\n"),
  );
  await dockerBuild(ctx, { tag: TAG });
  archive = path.join(work, "image.tar");
  await dockerSave(TAG, archive);
  const { host } = await ensureRegistry();
  pushed = `${host}/${TAG}`;
  await docker(["tag", TAG, pushed]);
  await docker(["push", pushed]);
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface DockerHistoryLine {
  Comment: string;
  CreatedAt: string;
  CreatedBy: string;
  ID: string;
  Size: string;
}

const parseLines = <T>(text: string): T[] =>
  text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as T);

describe("against dockerd", () => {
  it("history of a `docker save` archive matches `docker history`", async () => {
    const expected = parseLines<DockerHistoryLine>(await docker(["history", "--no-trunc", "--format", "{{json .}}", TAG]));
    const actual = parseLines<DockerHistoryLine>(await historyCommand(`docker-archive:${archive}`, { store, format: "json", noTrunc: true }));
    const pick = (l: DockerHistoryLine): Omit<DockerHistoryLine, "CreatedAt"> & { CreatedAt: string } => ({
      ID: l.ID,
      CreatedAt: l.CreatedAt,
      CreatedBy: l.CreatedBy,
      Size: l.Size,
      Comment: l.Comment,
    });
    expect(actual.map(pick)).toEqual(expected.map(pick));
    expect(actual.some((l) => l.Size === "307kB")).toBe(true);

    // The truncated table rows agree too (CREATED aside, which moves with the clock).
    const table = (text: string): string[][] => text.trim().split("\n").map((l) => l.split(/ {3,}/).filter((c) => !/ago$/.test(c)));
    expect(table(await historyCommand(`docker-archive:${archive}`, { store }))).toEqual(table(await docker(["history", TAG])));
  });

  it("inspect of the archive matches `docker inspect`", async () => {
    const [expected] = JSON.parse(await docker(["inspect", TAG])) as Record<string, unknown>[];
    const actual = await inspectImage(`docker-archive:${archive}`, { store });
    expect(actual["RepoTags"]).toEqual([TAG]); // what `docker save TAG` recorded
    for (const key of ["Id", "Created", "Author", "Comment", "DockerVersion", "Config", "ContainerConfig", "Architecture", "Os", "Size", "VirtualSize", "RootFS"]) {
      expect(actual[key], key).toEqual(expected![key]);
    }
  });

  it("inspect of a registry image matches `docker inspect` of the pushed image", async () => {
    const [expected] = JSON.parse(await docker(["inspect", pushed])) as Record<string, unknown>[];
    const actual = await inspectImage(`docker://${pushed}`, { store, size: true });
    for (const key of ["Id", "Created", "Config", "Architecture", "Os", "Size", "RootFS"]) {
      expect(actual[key], key).toEqual(expected![key]);
    }
    expect(expected!["RepoDigests"]).toContain((actual["RepoDigests"] as string[])[0]);
    expect(actual["RepoTags"]).toEqual([pushed]);
    const withoutSize = await inspectImage(`docker://${pushed}`, { store });
    expect(withoutSize["Size"]).toBeNull();
    const history = parseLines<DockerHistoryLine>(await historyCommand(`docker://${pushed}`, { store, format: "json", noTrunc: true }));
    expect(history.map((l) => l.Size)).toEqual(parseLines<DockerHistoryLine>(await docker(["history", "--no-trunc", "--format", "{{json .}}", TAG])).map((l) => l.Size));
  });

  it("analyze sees the bytes the `rm` layer leaves in the layer below", async () => {
    const report = await analyzeImage(`docker-archive:${archive}`, { store });
    const writer = report.layers.find((l) => l.createdBy.includes("dd if=/dev/zero"))!;
    const remover = report.layers.find((l) => l.createdBy.includes("rm /opt/app/big"))!;
    expect(remover.index).toBe(writer.index + 1);
    expect(writer.added).toEqual({ count: 3, bytes: BIG_BYTES + "hi\n".length });
    expect(remover.removed).toEqual({ count: 1, bytes: BIG_BYTES });
    expect(remover.changed).toEqual({ count: 1, bytes: "changed\n".length });
    expect(writer.wasted).toBe(BIG_BYTES + "hi\n".length);
    expect(report.wastedFiles[0]).toEqual({ path: "opt/app/big", versions: 1, bytes: BIG_BYTES });
    // Per-layer bytes are docker's history sizes; their sum is inspect's Size.
    const inspected = await inspectImage(`docker-archive:${archive}`, { store });
    expect(report.totalBytes).toBe(inspected["Size"]);
    expect(report.efficiency).toBeCloseTo(1 - report.wastedBytes / report.totalBytes, 12);
    expect(report.efficiency).toBeLessThan(1);
  });
});
