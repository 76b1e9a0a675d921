import { execFileSync } from "node:child_process";
import { copyFileSync, createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRootfs,
  diffTrees,
  extractLayer,
  writeLayerBlob,
  mountOverlay,
  overlayMountData,
  runInSandbox,
  unmount,
  type LayerEntry,
  type RootfsDriver,
  type SandboxMount,
} from "@kiln/snapshot";

let scratch: string;
let busybox: string;
let content: string;
let n = 0;

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), "kiln-rootfs-test-"));
  busybox = path.join(scratch, "busybox");
  mkdirSync(path.join(busybox, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", path.join(busybox, "bin/busybox"));
  execFileSync("chmod", ["755", path.join(busybox, "bin/busybox")]);
  for (const a of execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n")) {
    if (a && a !== "busybox") symlinkSync("busybox", path.join(busybox, "bin", a));
  }
  // A second, upper lower layer with things to change.
  content = path.join(scratch, "content");
  for (const d of ["data", "dir1/sub", "dir2", "etc"]) mkdirSync(path.join(content, d), { recursive: true });
  for (const [f, v] of Object.entries({ "data/a.txt": "a\n", "data/b.txt": "b\n", "dir1/x": "x\n", "dir1/sub/y": "y\n", "dir2/z": "z\n", f1: "f1\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n" })) {
    writeFileSync(path.join(content, f), v);
  }
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function runStep(
  driver: RootfsDriver,
  script: string,
  lowerDirs = [content, busybox],
  mounts: SandboxMount[] = [],
  executor: "embedded" | "runc" = "embedded",
) {
  const rootfs = await createRootfs({ driver, lowerDirs, dir: path.join(scratch, `step${n++}`), mounts });
  let err = "";
  const res = await runInSandbox({
    ...rootfs.sandbox,
    args: ["/bin/sh", "-c", script],
    env: ["PATH=/bin"],
    cwd: "/",
    user: { uid: 0, gid: 0 },
    network: "none",
    mounts,
    executor,
    stderr: (c) => (err += c.toString()),
  });
  expect(err).toBe("");
  expect(res.exitCode).toBe(0);
  return { rootfs, entries: await rootfs.diff() };
}

/** What a layer tar would record of an entry, minus the mtime (which differs between runs). */
function shape(e: LayerEntry) {
  return { path: e.path, type: e.type, mode: e.mode.toString(8), uid: e.uid, gid: e.gid, size: e.size, linkname: e.linkname };
}

async function readAll(e: LayerEntry): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of e.open ? e.open() : createReadStream(e.sourcePath!)) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString();
}

const CHANGES = [
  "rm /data/a.txt", // whiteout
  "chmod 4755 /data/b.txt", // metadata only (setuid)
  "rm -rf /dir1 && mkdir /dir1 && echo new > /dir1/n", // opaque dir
  "rm -rf /dir2 && echo file > /dir2", // directory replaced by a file
  "rm /f1 && ln -s /data/b.txt /f1", // file replaced by a symlink
  "echo h > /new1 && ln /new1 /new2", // hardlink
  "mkfifo /fifo1",
  "chown 1000:1000 /etc/passwd",
].join(" && ");

describe("diff of a RUN step", () => {
  it("overlay: whiteouts, opaque dirs, replacements, hardlinks, fifos, setuid, chown", async () => {
    const { entries } = await runStep("overlay", CHANGES);
    expect(entries.map(shape)).toEqual([
      { path: "data", type: "dir", mode: "755", uid: 0, gid: 0, size: undefined, linkname: undefined },
      { path: "data/.wh.a.txt", type: "file", mode: "0", uid: 0, gid: 0, size: 0, linkname: undefined },
      { path: "data/b.txt", type: "file", mode: "4755", uid: 0, gid: 0, size: 2, linkname: undefined },
      { path: "dir1", type: "dir", mode: "755", uid: 0, gid: 0, size: undefined, linkname: undefined },
      { path: "dir1/.wh..wh..opq", type: "file", mode: "0", uid: 0, gid: 0, size: 0, linkname: undefined },
      { path: "dir1/n", type: "file", mode: "644", uid: 0, gid: 0, size: 4, linkname: undefined },
      { path: "dir2", type: "file", mode: "644", uid: 0, gid: 0, size: 5, linkname: undefined },
      { path: "etc", type: "dir", mode: "755", uid: 0, gid: 0, size: undefined, linkname: undefined },
      { path: "etc/passwd", type: "file", mode: "644", uid: 1000, gid: 1000, size: 26, linkname: undefined },
      { path: "f1", type: "symlink", mode: "777", uid: 0, gid: 0, size: undefined, linkname: "/data/b.txt" },
      { path: "fifo1", type: "fifo", mode: "644", uid: 0, gid: 0, size: undefined, linkname: undefined },
      { path: "new1", type: "file", mode: "644", uid: 0, gid: 0, size: 2, linkname: undefined },
      { path: "new2", type: "hardlink", mode: "644", uid: 0, gid: 0, size: 0, linkname: "new1" },
    ]);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(await readAll(byPath.get("dir1/n")!)).toBe("new\n");
    expect(await readAll(byPath.get("data/b.txt")!)).toBe("b\n");
  });

  it("copy driver gives the same entries as overlay for the same commands", async () => {
    const overlay = (await runStep("overlay", CHANGES)).entries.map(shape);
    const copy = (await runStep("copy", CHANGES)).entries.map(shape);
    expect(copy).toEqual(overlay);
  });

  it("the runc executor gives the same entries as the embedded launcher", async () => {
    const embedded = (await runStep("overlay", CHANGES)).entries.map(shape);
    const runc = (await runStep("overlay", CHANGES, undefined, [], "runc")).entries.map(shape);
    expect(runc).toEqual(embedded);
  });

  it("the layer written from the diff and extracted as a lower reproduces the step's result", async () => {
    for (const d of ["overlay", "copy"] as const) {
      const { entries } = await runStep(d, CHANGES);
      const tar = path.join(scratch, `layer-${d}.tar`);
      await writeLayerBlob(entries, createWriteStream(tar), { compression: "none" });
      const layerDir = path.join(scratch, `layer-${d}`);
      await extractLayer(createReadStream(tar), layerDir, { whiteouts: "overlay" });
      let out = "";
      const next = await createRootfs({ driver: d, lowerDirs: [layerDir, content, busybox], dir: path.join(scratch, `next-${d}`) });
      const res = await runInSandbox({
        ...next.sandbox,
        args: [
          "/bin/sh",
          "-c",
          "ls /data /dir1 /; cat /dir2; readlink /f1; [ /new1 -ef /new2 ] && echo linked; [ -p /fifo1 ] && echo fifo; " +
            "stat -c '%a %u:%g' /data/b.txt /etc/passwd",
        ],
        env: ["PATH=/bin"],
        cwd: "/",
        user: { uid: 0, gid: 0 },
        network: "none",
        stdout: (c) => (out += c.toString()),
      });
      expect(res.exitCode).toBe(0);
      expect(out).toBe(
        "/:\nbin\ndata\ndev\ndir1\ndir2\netc\nf1\nfifo1\nnew1\nnew2\nproc\nsys\n\n/data:\nb.txt\n\n/dir1:\nn\n" +
          "file\n/data/b.txt\nlinked\nfifo\n4755 0:0\n644 1000:1000\n",
      );
    }
  });

  it("renames: a moved directory is a whiteout plus the full new tree, with either driver", async () => {
    const expected = ["file:.wh.dir1", "dir:moved", "file:moved/x", "dir:moved/sub", "file:moved/sub/y", "dir:data", "file:data/.wh.b.txt", "file:data/c.txt"];
    for (const d of ["overlay", "copy"] as const) {
      const { entries } = await runStep(d, "mv /dir1 /moved && mv /data/b.txt /data/c.txt");
      expect(entries.map((e) => `${e.type}:${e.path}`).sort()).toEqual([...expected].sort());
    }
  });

  it("carries a file's xattrs (but no overlay bookkeeping) into its entry", async () => {
    const lower = path.join(scratch, "xattr-lower");
    mkdirSync(lower, { recursive: true });
    writeFileSync(path.join(lower, "tool"), "bin");
    execFileSync("setfattr", ["-n", "user.kiln", "-v", "v1", path.join(lower, "tool")]);
    for (const d of ["overlay", "copy"] as const) {
      const { entries } = await runStep(d, "chmod 700 /tool", [lower, busybox]);
      expect(entries.map((e) => [e.path, e.mode.toString(8), e.xattrs])).toEqual([
        ["tool", "700", { "user.kiln": Buffer.from("v1") }],
      ]);
    }
  });

  it("an unchanged step has an empty diff with either driver", async () => {
    for (const d of ["overlay", "copy"] as const) {
      expect((await runStep(d, "cat /etc/passwd >/dev/null; ls -R / >/dev/null")).entries).toEqual([]);
    }
  });

  it("FROM scratch: no lower at all, nothing but the command's own output in the layer", async () => {
    const mounts: SandboxMount[] = [{ type: "bind", source: "/bin/busybox", target: "/bin/busybox", readonly: true }];
    for (const d of ["overlay", "copy"] as const) {
      const rootfs = await createRootfs({ driver: d, lowerDirs: [], dir: path.join(scratch, `scratch-${d}`), mounts });
      const res = await runInSandbox({
        ...rootfs.sandbox,
        args: ["/bin/busybox", "sh", "-c", "echo hi > /out; /bin/busybox mkdir -p /app/x"],
        env: [],
        cwd: "/",
        user: { uid: 0, gid: 0 },
        network: "none",
        mounts,
      });
      expect(res.exitCode).toBe(0);
      expect((await rootfs.diff()).map((e) => `${e.type}:${e.path}`)).toEqual(["dir:app", "dir:app/x", "file:out"]);
      await rootfs.dispose();
    }
  });

  it("auto picks overlay here and dispose removes everything", async () => {
    const dir = path.join(scratch, "auto");
    const rootfs = await createRootfs({ driver: "auto", lowerDirs: [busybox], dir });
    expect(rootfs.driver).toBe("overlay");
    await rootfs.dispose();
    expect(() => readFileSync(dir)).toThrow();
  });
});

describe("overlay with many lowers", () => {
  it("stays under the one-page mount option limit: relative paths, then short symlinks; the kernel accepts both", async () => {
    const layers = path.join(scratch, "layers");
    const lowers: string[] = [];
    for (let i = 0; i < 100; i++) {
      const d = path.join(layers, i.toString(16).padStart(64, "0"), "diff");
      mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, `l${i}`), String(i));
      lowers.push(d);
    }
    const dirs = (k: number) => ({ lowerDirs: lowers.slice(0, k), upperDir: "/u", workDir: "/w" });
    const relative = overlayMountData(dirs(50));
    expect(relative.cwd).toBe(layers);
    expect(relative.data).toContain(`lowerdir=${"0".repeat(64)}/diff:`);
    expect(() => overlayMountData(dirs(100))).toThrow(/too long/);
    const linkDir = path.join(scratch, "links");
    const linked = overlayMountData(dirs(100), { linkDir });
    expect(linked.cwd).toBe(linkDir);
    expect(linked.data).toMatch(/^lowerdir=0:1:2:/);
    expect(linked.data.length).toBeLessThan(4096);
    // Real mounts inside the sandbox: the first and the last lower are both visible.
    for (const k of [50, 100]) {
      const { rootfs } = await runStep("overlay", `cat /l0 /l${k - 1} > /both`, [...lowers.slice(0, k), busybox]);
      expect(readFileSync(path.join(rootfs.changesDir, "both"), "utf8")).toBe(`0${k - 1}`);
    }
  });
});

describe("mountOverlay / unmount (host side)", () => {
  it("mounts an overlay with no lower, and unmounting leaves the upper with the writes", async () => {
    const d = path.join(scratch, "host-mount");
    const o = { lowerDirs: [], upperDir: path.join(d, "upper"), workDir: path.join(d, "work"), target: path.join(d, "merged") };
    await mountOverlay(o);
    try {
      writeFileSync(path.join(o.target, "f"), "x");
      expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(o.target);
    } finally {
      await unmount(o.target);
    }
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(o.target);
    expect(readFileSync(path.join(o.upperDir, "f"), "utf8")).toBe("x");
  });
});

describe("diffTrees", () => {
  it("diffs two separate trees: changed, added, deleted (top-most only), parents included", async () => {
    const a = path.join(scratch, "tree-a");
    const b = path.join(scratch, "tree-b");
    for (const t of [a, b]) mkdirSync(path.join(t, "keep/deep"), { recursive: true });
    writeFileSync(path.join(a, "keep/deep/same"), "same");
    writeFileSync(path.join(a, "keep/mod"), "old");
    mkdirSync(path.join(a, "gone/inner"), { recursive: true });
    writeFileSync(path.join(a, "gone/inner/f"), "f");
    execFileSync("cp", ["-a", `${a}/keep/.`, `${b}/keep/`]);
    writeFileSync(path.join(b, "keep/mod"), "new content");
    writeFileSync(path.join(b, "added"), "+");
    execFileSync("touch", ["-r", path.join(a, "keep"), path.join(b, "keep")]);
    const entries = await diffTrees(a, b);
    expect(entries.map((e) => `${e.type}:${e.path}`)).toEqual(["file:.wh.gone", "file:added", "dir:keep", "file:keep/mod"]);
  });
});
