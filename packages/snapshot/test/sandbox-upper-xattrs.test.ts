import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRootfs, readXattrs, runInSandbox, type LayerEntry } from "@kiln/snapshot";

// The launcher reads the overlay upper dir's xattrs after the run (instead of a getfattr process in the
// diff): they must be exactly what getfattr reads, and the diff must not change. Needs root and busybox.
let scratch: string;
let base: string;
let n = 0;

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), "kiln-upper-xattrs-test-"));
  base = path.join(scratch, "base");
  mkdirSync(path.join(base, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", path.join(base, "bin/busybox"));
  for (const a of ["sh", "rm", "mkdir", "echo", "chmod", "ln", "touch", "mv"]) symlinkSync("busybox", path.join(base, "bin", a));
  for (const d of ["keep/sub", "gone/deep", "étoile"]) mkdirSync(path.join(base, d), { recursive: true });
  writeFileSync(path.join(base, "keep/tool"), "bin");
  writeFileSync(path.join(base, "gone/deep/f"), "f");
  writeFileSync(path.join(base, "étoile/ü"), "u");
  execFileSync("setfattr", ["-n", "user.kiln", "-v", "v1", path.join(base, "keep/tool")]);
  execFileSync("setfattr", ["-n", "user.bin", "-v", "0x00ff0a00", path.join(base, "étoile/ü")]);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SCRIPT = [
  "chmod 700 /keep/tool", // copy-up keeps the lower file's xattr
  "rm -rf /gone && mkdir -p /gone/new", // opaque directory
  "rm /keep/sub -r", // whiteout
  "chmod 600 /étoile/ü", // non-ASCII names, a binary value with NUL and newline bytes
  "ln -s /nowhere /dangling",
  "echo x > /plain",
].join(" && ");

function normalize(m: Map<string, Map<string, Buffer>>): Array<[string, Array<[string, string]>]> {
  return [...m]
    .map(([p, a]) => [p, [...a].map(([k, v]) => [k, v.toString("hex")] as [string, string]).sort()] as [string, Array<[string, string]>])
    .filter(([, a]) => a.length > 0)
    .sort((x, y) => (x[0] < y[0] ? -1 : 1));
}

function shape(e: LayerEntry) {
  return { path: e.path, type: e.type, mode: e.mode, size: e.size, linkname: e.linkname, xattrs: e.xattrs };
}

describe("upper dir xattrs read by the launcher", () => {
  it("match getfattr's, and the diff made with them is the same", async () => {
    const r = await createRootfs({ driver: "overlay", lowerDirs: [base], dir: path.join(scratch, `r${n++}`) });
    let err = "";
    let fromLauncher: Map<string, Map<string, Buffer>> | undefined;
    const res = await runInSandbox({
      ...r.sandbox,
      args: ["/bin/sh", "-c", SCRIPT],
      env: ["PATH=/bin"],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      network: "none",
      hostname: "xattr-test",
      onUpperXattrs: (x) => (fromLauncher = x),
      stderr: (c) => (err += c.toString()),
    });
    expect(err).toBe("");
    expect(res.exitCode).toBe(0);
    if (!fromLauncher) throw new Error("onUpperXattrs was not called");
    const upper = r.sandbox.overlay!.upperDir;
    const fromGetfattr = await readXattrs([upper], { recursive: true });
    expect(normalize(fromLauncher)).toEqual(normalize(fromGetfattr));
    // The test is only meaningful if it saw the interesting attributes.
    expect(fromLauncher.get(path.join(upper, "keep/tool"))?.get("user.kiln")?.toString()).toBe("v1");
    expect(fromLauncher.get(path.join(upper, "étoile/ü"))?.get("user.bin")?.toString("hex")).toBe("00ff0a00");
    expect(fromLauncher.get(path.join(upper, "gone"))?.get("trusted.overlay.opaque")?.toString()).toBe("y");

    const withLauncher = (await r.diff({ xattrs: fromLauncher })).map(shape);
    const withGetfattr = (await r.diff()).map(shape);
    expect(withLauncher).toEqual(withGetfattr);
    expect(withLauncher.map((e) => e.path)).toContain("gone/.wh..wh..opq");
    await r.dispose();
  });

  it("hold nothing below the upper dir for a run that changed nothing", async () => {
    const r = await createRootfs({ driver: "overlay", lowerDirs: [base], dir: path.join(scratch, `r${n++}`) });
    let got: Map<string, Map<string, Buffer>> | undefined;
    const res = await runInSandbox({
      ...r.sandbox,
      args: ["/bin/sh", "-c", "true"],
      env: [],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      network: "none",
      hostname: "xattr-test",
      onUpperXattrs: (x) => (got = x),
    });
    expect(res).toEqual({ exitCode: 0 });
    if (!got) throw new Error("onUpperXattrs was not called");
    // Only the upper dir itself (overlay's own bookkeeping on it), nothing below.
    const upper = r.sandbox.overlay!.upperDir;
    expect([...got.keys()].filter((p) => p !== upper)).toEqual([]);
    expect(await r.diff({ xattrs: got })).toEqual([]);
    await r.dispose();
  });
});
