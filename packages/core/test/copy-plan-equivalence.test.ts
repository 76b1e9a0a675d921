// COPY planning against an image with symlinks: ImageFsView's resolution (path, cursor and child lookups) and
// planCopy's layer entries are checked against a plain reference that resolves every path from the root and
// plans one path at a time (the straightforward form of the rules), on real layers and real build contexts,
// and the engine's COPY layers are checked to be byte-for-byte (diffID) what the reference plan writes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { BuildContext, opaqueEntry, whiteoutEntry, writeLayerBlob, type LayerEntry } from "@kiln/snapshot";
import { ImageFsView, openStore, type KilnStore } from "@kiln/core";
import { CopyPlanError, planCopy, type CopyNode, type CopyPlanOptions, type CopySource } from "../src/engine/steps/copy-plan.js";
import { resolveContextSources } from "../src/engine/steps/copy.js";
import { writePartsLayerToStore } from "../src/engine/steps/layer-writer.js";
import type { FsNode } from "../src/engine/fs-view.js";
import type { CopyInstruction } from "../src/dockerfile/instructions.js";
import type { LayerDescriptor } from "../src/image/oci.js";
import { makeFixture, type Fixture } from "./support/build-fixture.js";

// ---- the reference: every lookup walks from the root; one path at a time ----

type Lstat = (p: string) => FsNode | undefined;

function refResolve(lstat: Lstat, p: string, depth = 0): string | undefined {
  if (depth > 40) return undefined;
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  const cur: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === "..") {
      cur.pop();
      continue;
    }
    const node = lstat([...cur, part].join("/"));
    if (node?.type === "symlink" && node.linkname !== undefined) {
      const target = node.linkname.startsWith("/") ? node.linkname : [...cur, node.linkname].join("/");
      const rest = parts.slice(i + 1).join("/");
      return refResolve(lstat, rest ? `${target}/${rest}` : target, depth + 1);
    }
    cur.push(part);
  }
  const rel = cur.join("/");
  return rel === "" || lstat(rel) ? rel : undefined;
}

const refStat = (lstat: Lstat, p: string): FsNode | undefined => {
  const r = refResolve(lstat, p);
  return r === undefined ? undefined : lstat(r);
};
const isRoot = (p: string): boolean => p.split("/").every((s) => s === "" || s === ".");
const refIsDir = (lstat: Lstat, p: string): boolean => isRoot(p) || refStat(lstat, p)?.type === "dir";

/** The COPY rules planned path by path, every image lookup from the root. */
function refPlan(opts: CopyPlanOptions): LayerEntry[] {
  const lstat: Lstat = (p) => opts.view.lstat(p);
  const entries = new Map<string, LayerEntry>();
  const stat = (p: string): FsNode | undefined => refStat(lstat, p);
  const exists = (rel: string): boolean => rel === "" || entries.has(rel) || stat(rel) !== undefined;
  const isDir = (rel: string): boolean => (entries.has(rel) ? entries.get(rel)!.type === "dir" : refIsDir(lstat, rel));
  const mkdirAll = (rel: string): void => {
    if (rel === "" || entries.has(rel)) return;
    const parts = rel.split("/").filter((p) => p !== "");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (entries.has(p)) continue;
      const existing = stat(p);
      if (existing && existing.type !== "dir") throw new CopyPlanError(`cannot copy to /${p}: not a directory`);
      entries.set(
        p,
        existing
          ? { path: p, type: "dir", mode: existing.mode, uid: existing.uid, gid: existing.gid, mtimeMs: opts.createdMtimeMs }
          : { path: p, type: "dir", mode: opts.chmod ?? 0o755, uid: opts.chown?.uid ?? 0, gid: opts.chown?.gid ?? 0, mtimeMs: opts.createdMtimeMs },
      );
    }
  };
  const put = (rel: string, node: CopyNode, applyMetadata: boolean): void => {
    const parts = rel.split("/");
    parts.pop();
    if (parts.length > 0) mkdirAll(parts.join("/"));
    const prev = entries.get(rel);
    const keepDir = node.type === "dir" && (prev?.type === "dir" || (!prev && refIsDir(lstat, rel)));
    if (node.type === "dir" && keepDir && !applyMetadata) {
      if (!prev) mkdirAll(rel);
      return;
    }
    const entry: LayerEntry & { fingerprint?: string } = {
      path: rel,
      type: node.type,
      mode: opts.chmod ?? node.mode,
      uid: opts.chown?.uid ?? node.uid,
      gid: opts.chown?.gid ?? node.gid,
      mtimeMs: node.mtimeMs,
    };
    if (node.size !== undefined) entry.size = node.size;
    if (node.linkname !== undefined) entry.linkname = node.linkname;
    if (node.open) entry.open = node.open;
    if (node.sourcePath) entry.sourcePath = node.sourcePath;
    if (node.fingerprint !== undefined) entry.fingerprint = node.fingerprint;
    if (prev?.type === "dir" && node.type !== "dir") for (const key of [...entries.keys()]) if (key.startsWith(`${rel}/`)) entries.delete(key);
    entries.set(rel, entry);
  };
  const clean = (abs: string): string => abs.split("/").filter((p) => p !== "" && p !== ".").join("/");
  const resolveDest = (destRel: string): string => {
    if (destRel === "") return "";
    const resolved = refResolve(lstat, destRel);
    if (resolved !== undefined) return resolved;
    const parts = destRel.split("/");
    const last = parts.pop()!;
    const parent = resolveDest(parts.join("/"));
    return parent === "" ? last : `${parent}/${last}`;
  };
  const destIsDirHint = opts.dest.endsWith("/") || opts.dest.endsWith("/.");
  const destRel = resolveDest(clean(opts.dest));
  if (destIsDirHint) mkdirAll(destRel);
  else if (destRel.includes("/")) mkdirAll(destRel.slice(0, destRel.lastIndexOf("/")));
  for (const source of opts.sources) {
    let target = destRel;
    const srcIsDir = source.node.type === "dir";
    const base = clean(source.path).split("/").at(-1) ?? "";
    if (!srcIsDir && exists(target) && isDir(target)) target = target === "" ? base : `${target}/${base}`;
    if (srcIsDir) {
      mkdirAll(target);
      for (const child of source.children ?? []) {
        const childRel = target === "" ? child.rel : `${target}/${child.rel}`;
        put(childRel, child.node, !exists(childRel));
      }
    } else {
      if (target === "") throw new CopyPlanError("cannot copy a file onto the root directory");
      put(target, source.node, true);
    }
  }
  return [...entries.values()];
}

/** planCopy's answer or its error, for comparing with the reference's. */
function outcome(plan: (o: CopyPlanOptions) => LayerEntry[], opts: CopyPlanOptions): { entries?: LayerEntry[]; error?: string } {
  try {
    return { entries: plan(opts) };
  } catch (err) {
    if (err instanceof CopyPlanError) return { error: err.message };
    throw err;
  }
}

// ---- a base image with symlinks of every kind ----

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const dir = (p: string, mode = 0o755, uid = 0, gid = 0): LayerEntry => ({ path: p, type: "dir", mode, uid, gid, mtimeMs: 0 });
const file = (p: string, content = "x"): LayerEntry => ({ path: p, type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: content.length, open: () => Readable.from([Buffer.from(content)]) });
const link = (p: string, target: string): LayerEntry => ({ path: p, type: "symlink", mode: 0o777, uid: 0, gid: 0, mtimeMs: 0, linkname: target });

async function layer(store: KilnStore, entries: LayerEntry[]): Promise<LayerDescriptor> {
  const ingest = store.blobs.ingest();
  const info = await writeLayerBlob(entries, ingest);
  const { digest, size } = await ingest.commit();
  return { mediaType: info.mediaType, digest, size, diffID: info.diffID } as LayerDescriptor;
}

const BASE_LAYER_1: LayerEntry[] = [
  dir("bin"),
  file("bin/busybox"),
  link("bin/sh", "busybox"),
  dir("usr"),
  dir("usr/lib"),
  file("usr/lib/libc.so"),
  dir("usr/lib/mods", 0o700, 3, 4),
  file("usr/lib/mods/m1"),
  dir("usr/share"),
  file("usr/share/old"),
  link("lib", "usr/lib"),
  link("lib64", "/usr/lib"),
  dir("etc"),
  file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
  link("etc/alt", "../../../../etc"),
  dir("opt"),
  dir("opt/real", 0o750, 1000, 1000),
  dir("opt/real/keep", 0o711, 7, 7),
  file("opt/real/keep/old.txt"),
  dir("run"),
  dir("var"),
  link("var/run", "../run"),
  dir("srv"),
  file("srv/file"),
  link("srv/link", "/opt/real"),
  link("srv/chain", "link"),
  link("loop1", "loop2"),
  link("loop2", "/loop1"),
  link("dangling", "/nowhere/x"),
  link("tofile", "/etc/passwd"),
  link("up", ".."),
  link("self", "."),
  dir("home"),
  dir("home/app", 0o750, 1000, 1000),
  // n1 -> n2 -> ... -> n41 -> usr: from n2 that is 40 symlinks (resolved), from n1 41 (given up).
  ...Array.from({ length: 41 }, (_, i) => link(`n${i + 1}`, i === 40 ? "usr" : `/n${i + 2}`)),
];
// Whiteouts and an opaque directory on top: what the view hides must stay hidden from every lookup.
const BASE_LAYER_2: LayerEntry[] = [dir("srv"), whiteoutEntry("srv/file"), dir("usr"), dir("usr/share"), opaqueEntry("usr/share"), file("usr/share/new"), dir("opt"), dir("opt/real", 0o750, 1000, 1000), dir("opt/real/keep", 0o711, 7, 7), file("opt/real/keep/added")];

/** A fresh store holding the two base layers, and the image view over them. */
async function baseView(): Promise<{ store: Awaited<ReturnType<typeof openStore>>; view: ImageFsView }> {
  const root = await mkdtemp(path.join(os.tmpdir(), "kiln-copy-plan-"));
  dirs.push(root);
  const store = await openStore(root);
  return { store, view: await ImageFsView.load(store.blobs, [await layer(store, BASE_LAYER_1), await layer(store, BASE_LAYER_2)]) };
}

const NAMES = ["bin", "sh", "busybox", "lib", "lib64", "usr", "mods", "share", "old", "new", "var", "run", "srv", "file", "link", "chain", "opt", "real", "keep", "loop1", "dangling", "etc", "alt", "tofile", "passwd", "up", "self", "home", "app", ".", "..", "nope"];

describe("ImageFsView resolution matches resolving from the root", () => {
  let view: ImageFsView;
  beforeAll(async () => {
    ({ view } = await baseView());
  });

  it("resolves the base image's symlinks as expected", () => {
    expect(view.resolve("/lib/mods/m1")).toBe("usr/lib/mods/m1");
    expect(view.resolve("/lib64/libc.so")).toBe("usr/lib/libc.so");
    expect(view.resolve("/srv/chain/keep")).toBe("opt/real/keep");
    expect(view.resolve("/var/run")).toBe("run");
    expect(view.resolve("/etc/alt/passwd")).toBe("etc/passwd");
    expect(view.resolve("/up/up/bin/sh")).toBe("bin/busybox");
    expect(view.resolve("/loop1")).toBeUndefined();
    expect(view.resolve("/dangling")).toBeUndefined();
    expect(view.resolve("/srv/file")).toBeUndefined(); // whited out
    expect(view.resolve("/usr/share/old")).toBeUndefined(); // below an opaque dir
    expect(view.stat("/tofile")?.type).toBe("file");
    expect(view.isDir("/srv/link")).toBe(true);
    expect(view.isDir("/./")).toBe(true);
    expect(view.resolve("/n2/lib")).toBe("usr/lib");
    expect(view.resolve("/n1/lib")).toBeUndefined();
    expect(view.statChild(view.cursor("/n2"), "lib")?.type).toBe("dir");
    expect(view.cursor("/n1")).toBeUndefined();
    const lstat: Lstat = (p) => view.lstat(p);
    expect([refResolve(lstat, "/n2/lib"), refResolve(lstat, "/n1/lib")]).toEqual(["usr/lib", undefined]);
  });

  it("agrees with the reference on every path of up to three components, from the root and by cursor", () => {
    const lstat: Lstat = (p) => view.lstat(p);
    const paths: string[][] = [[]];
    for (const a of NAMES) {
      paths.push([a]);
      for (const b of NAMES) {
        paths.push([a, b]);
        for (const c of NAMES) paths.push([a, b, c]);
      }
    }
    let mismatches = 0;
    for (const parts of paths) {
      const p = parts.join("/");
      const want = refResolve(lstat, p);
      const wantStat = refStat(lstat, p);
      const wantDir = refIsDir(lstat, p);
      let c = view.cursor("");
      for (const part of parts) c = view.child(c, part);
      const parent = view.cursor(parts.slice(0, -1).join("/"));
      const ok =
        view.resolve(p) === want &&
        view.resolve(`/${p}/`) === want &&
        view.stat(p) === wantStat &&
        view.isDir(p) === wantDir &&
        view.statCursor(c) === wantStat &&
        view.statCursor(view.cursor(p)) === wantStat &&
        (parts.length === 0 || view.statChild(parent, parts.at(-1)!) === wantStat) &&
        (view.hasBelow(view.cursor(p)) || NAMES.every((n) => n === "." || n === ".." || refStat(lstat, `${p}/${n}`) === undefined));
      if (!ok && mismatches++ < 5) expect.soft({ path: p, resolve: view.resolve(p), cursor: c?.path }).toEqual({ path: p, resolve: want, cursor: c?.path });
    }
    expect(mismatches).toBe(0);
    expect(paths.length).toBeGreaterThan(30_000);
  });
});

// ---- planCopy against the reference ----

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("planCopy matches the path-by-path reference", () => {
  let view: ImageFsView;
  let empty: ImageFsView;
  beforeAll(async () => {
    const base = await baseView();
    view = base.view;
    empty = ImageFsView.empty(base.store.blobs);
  });

  const DESTS = ["/", "/srv/link/", "/srv/link", "/srv/chain/app/", "/lib/", "/lib/new", "/lib64/mods/", "/var/run/x/", "/opt/real/keep/", "/etc/passwd", "/tofile", "/loop1/x/", "/dangling/", "/dangling", "/new/dir/", "/home/app", "/up/srv/link/", "/bin/sh", "/bin/sh/x", "/self/usr/share/", "/etc/alt/", "/srv/file/"];
  const CHILD_NAMES = ["keep", "old.txt", "mods", "m1", "share", "new", "lib", "app", "x", "y", "link", "passwd", "run", "sh"];

  function randomNode(r: () => number, type: CopyNode["type"]): CopyNode {
    const node: CopyNode = { type, mode: r() < 0.5 ? 0o755 : 0o600, uid: Math.floor(r() * 3), gid: Math.floor(r() * 3), mtimeMs: Math.floor(r() * 1e6) };
    if (type === "file") {
      node.size = Math.floor(r() * 100);
      node.sourcePath = `/ctx/${Math.floor(r() * 1000)}`;
      if (r() < 0.8) node.fingerprint = `sha256:${Math.floor(r() * 1e9)}`;
    }
    if (type === "symlink") node.linkname = r() < 0.5 ? "/opt/real" : "../x";
    return node;
  }

  function randomSource(r: () => number): CopySource {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const kind = r();
    if (kind < 0.2) return { path: `src/${pick(CHILD_NAMES)}`, node: randomNode(r, "file") };
    if (kind < 0.25) return { path: pick(CHILD_NAMES), node: randomNode(r, "symlink") };
    // A directory: a random tree in walk order (parents first), sometimes shuffled, sometimes with odd names.
    const rels = new Set<string>();
    const n = 1 + Math.floor(r() * 25);
    for (let i = 0; i < n; i++) {
      const depth = 1 + Math.floor(r() * 3);
      const parts: string[] = [];
      for (let d = 0; d < depth; d++) parts.push(pick(CHILD_NAMES));
      for (let d = 1; d <= depth; d++) rels.add(parts.slice(0, d).join("/"));
    }
    let children = [...rels].sort().map((rel) => {
      const isParent = [...rels].some((o) => o.startsWith(`${rel}/`));
      return { rel, node: randomNode(r, isParent ? "dir" : r() < 0.6 ? "file" : r() < 0.8 ? "dir" : "symlink") };
    });
    if (r() < 0.15) children = children.sort(() => r() - 0.5);
    if (r() < 0.1) children.push({ rel: pick(["x/.", "./y", "x//z", "."]), node: randomNode(r, "file") });
    return { path: pick(["src", "app", "."]), node: randomNode(r, "dir"), children };
  }

  it("gives the same entries (or the same error) on 3000 random COPYs onto the symlinked image", () => {
    const r = rng(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    let errors = 0;
    let entries = 0;
    for (let i = 0; i < 3000; i++) {
      const sources: CopySource[] = [];
      const n = 1 + Math.floor(r() * 3);
      for (let s = 0; s < n; s++) sources.push(randomSource(r));
      const opts: CopyPlanOptions = { sources, dest: pick(DESTS), view: r() < 0.9 ? view : empty, createdMtimeMs: 42_000 };
      if (r() < 0.3) opts.chown = { uid: 5, gid: 6 };
      if (r() < 0.3) opts.chmod = 0o640;
      const want = outcome(refPlan, opts);
      const got = outcome(planCopy, opts);
      expect(got, `case ${i}: ${JSON.stringify({ dest: opts.dest, sources: sources.map((s) => [s.path, s.node.type, s.children?.map((c) => `${c.rel}:${c.node.type}`)]) })}`).toEqual(want);
      if (want.error) errors++;
      else entries += want.entries!.length;
    }
    // The cases reach both outcomes in earnest.
    expect(errors).toBeGreaterThan(50);
    expect(entries).toBeGreaterThan(10_000);
  });

  it("copies through a symlinked destination into the directory it points at, keeping existing dirs' metadata", () => {
    const opts: CopyPlanOptions = {
      sources: [
        {
          path: "app",
          node: randomNode(rng(1), "dir"),
          children: [
            { rel: "keep", node: { type: "dir", mode: 0o700, uid: 9, gid: 9, mtimeMs: 5 } },
            { rel: "keep/new.txt", node: { type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 5, size: 3, sourcePath: "/ctx/new.txt", fingerprint: "fp" } },
            { rel: "fresh", node: { type: "dir", mode: 0o700, uid: 9, gid: 9, mtimeMs: 5 } },
          ],
        },
      ],
      dest: "/srv/chain/",
      view,
      createdMtimeMs: 1000,
    };
    const entries = planCopy(opts);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect([...byPath.keys()].sort()).toEqual(["opt", "opt/real", "opt/real/fresh", "opt/real/keep", "opt/real/keep/new.txt"]);
    // Existing directories keep the image's owner and mode; the new one gets the source's.
    expect(byPath.get("opt/real")).toMatchObject({ mode: 0o750, uid: 1000, gid: 1000, mtimeMs: 1000 });
    expect(byPath.get("opt/real/keep")).toMatchObject({ mode: 0o711, uid: 7, gid: 7 });
    expect(byPath.get("opt/real/fresh")).toMatchObject({ mode: 0o700, uid: 9, gid: 9, mtimeMs: 5 });
    expect(byPath.get("opt/real/keep/new.txt")).toMatchObject({ type: "file", sourcePath: "/ctx/new.txt", fingerprint: "fp" });
    expect(entries).toEqual(refPlan(opts));
  });

  it("refuses to copy below a file, even one reached through a symlink", () => {
    const sources: CopySource[] = [{ path: "a", node: { type: "file", mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: 0 } }];
    expect(() => planCopy({ sources, dest: "/tofile/x", view, createdMtimeMs: 0 })).toThrow("cannot copy to /etc/passwd: not a directory");
    expect(() => planCopy({ sources: [{ path: "d", node: { type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 }, children: [{ rel: "sh/x", node: sources[0]!.node }] }], dest: "/bin/", view, createdMtimeMs: 0 })).toThrow("cannot copy to /bin/sh: not a directory");
  });
});

// ---- the engine's layers on a real context ----

describe("COPY layers onto an image with symlinks", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await makeFixture({
      "base/bin/busybox": "bb",
      "base/usr/lib/libc.so": "libc",
      "base/usr/lib/mods/m1": "m1",
      "base/opt/real/keep/old.txt": "old",
      "base/etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
      "base/etc/group": "root:x:0:\napp:x:1000:\n",
      "base/run/.keep": "",
      "app/index.js": "console.log(1)\n",
      "app/lib/util.js": "export {}\n",
      "app/keep/new.txt": "new",
      "more/a.conf": "a",
      "more/sub/b.conf": "b",
      "logs/keep.txt": "k",
      "logs/drop.log": "d",
      "logs/deep/drop.log": "d",
      "one.txt": "one",
    });
    await mkdir(path.join(f.context, "base/srv"), { recursive: true });
    await mkdir(path.join(f.context, "base/var"), { recursive: true });
    await symlink("/opt/real", path.join(f.context, "base/srv/link"));
    await symlink("link", path.join(f.context, "base/srv/chain"));
    await symlink("usr/lib", path.join(f.context, "base/lib"));
    await symlink("../run", path.join(f.context, "base/var/run"));
    await symlink("/etc/passwd", path.join(f.context, "base/tofile"));
    await symlink("busybox", path.join(f.context, "base/bin/sh"));
    await writeFile(path.join(f.context, "app/keep/.hidden"), "h");
  });
  afterAll(async () => f.cleanup());

  const EPOCH = 1_700_000_000;
  const copy = (sources: string[], dest: string, extra: Partial<CopyInstruction> = {}): CopyInstruction =>
    ({ kind: "copy", sources, contents: [], dest, link: false, excludes: [], parents: false, original: "", comments: [], range: undefined, ...extra }) as unknown as CopyInstruction;
  // Each COPY as the engine sees it: the instruction, its absolute destination and --chown.
  const STEPS: { line: string; instr?: CopyInstruction; dest: string; chown?: { uid: number; gid: number }; chmod?: number }[] = [
    { line: "COPY base/ /", instr: copy(["base/"], "/"), dest: "/" },
    { line: "WORKDIR /srv/chain/app", dest: "/srv/chain/app/" },
    { line: "COPY app/ .", instr: copy(["app/"], "."), dest: "/srv/chain/app/" },
    { line: "COPY --chown=app:app more/ /lib/extra/", instr: copy(["more/"], "/lib/extra/", { chown: "app:app" }), dest: "/lib/extra/", chown: { uid: 1000, gid: 1000 } },
    { line: "COPY --chmod=0640 --exclude=*.log --exclude=**/*.log logs/ /var/run/logs/", instr: copy(["logs/"], "/var/run/logs/", { chmod: "0640", excludes: ["*.log", "**/*.log"] }), dest: "/var/run/logs/", chmod: 0o640 },
    { line: "COPY one.txt /tofile", instr: copy(["one.txt"], "/tofile"), dest: "/tofile" },
    { line: "COPY app/keep /srv/link/keep", instr: copy(["app/keep"], "/srv/link/keep"), dest: "/srv/link/keep" },
  ];

  it("writes exactly the layers the reference plans (same diffIDs), files landing behind the symlinks", async () => {
    await f.write("Dockerfile", `FROM scratch\n${STEPS.map((s) => s.line).join("\n")}\n`);
    const { result } = await f.build({ sourceDateEpoch: EPOCH });
    const manifestLayers = result.image.manifest.layers;
    const diffIDs = result.image.config.rootfs.diff_ids;
    expect(diffIDs).toHaveLength(STEPS.length);
    const layers: LayerDescriptor[] = manifestLayers.map((l, i) => ({ ...l, diffID: diffIDs[i]! }) as LayerDescriptor);

    const ctx = await BuildContext.open(f.context);
    const scratch = await openStore(path.join(f.dir, "reference-store"));
    for (let i = 0; i < STEPS.length; i++) {
      const step = STEPS[i]!;
      const view = await ImageFsView.load(f.store.blobs, layers.slice(0, i));
      const loaded = step.instr ? await (await resolveContextSources(ctx, step.instr, EPOCH * 1000)).load() : { sources: [], cleanup: async () => undefined };
      const opts: CopyPlanOptions = { sources: loaded.sources, dest: step.dest, view, createdMtimeMs: EPOCH * 1000 };
      if (step.chown) opts.chown = step.chown;
      if (step.chmod !== undefined) opts.chmod = step.chmod;
      const want = refPlan(opts);
      expect(planCopy(opts), step.line).toEqual(want);
      const written = await writePartsLayerToStore(scratch.blobs, want, { sourceDateEpoch: EPOCH });
      expect(written.diffID, step.line).toBe(diffIDs[i]);
      await loaded.cleanup();
    }

    const top = await ImageFsView.load(f.store.blobs, layers);
    expect(top.lstat("/opt/real/app/index.js")?.type).toBe("file");
    expect(top.lstat("/opt/real/app/lib/util.js")?.type).toBe("file");
    expect(top.lstat("/srv/chain")?.type).toBe("symlink");
    expect(top.lstat("/usr/lib/extra/sub/b.conf")).toMatchObject({ type: "file", uid: 1000, gid: 1000 });
    expect(top.lstat("/usr/lib/extra")).toMatchObject({ type: "dir", uid: 1000, gid: 1000 });
    expect(top.lstat("/run/logs/keep.txt")).toMatchObject({ type: "file", mode: 0o640 });
    expect(top.lstat("/run/logs/drop.log")).toBeUndefined();
    expect(top.lstat("/run/logs/deep/drop.log")).toBeUndefined();
    expect(top.lstat("/var/run")?.type).toBe("symlink");
    expect((await top.readFile("/etc/passwd"))?.toString()).toBe("one");
    expect(top.lstat("/tofile")?.type).toBe("symlink");
    expect(top.lstat("/opt/real/keep/.hidden")?.type).toBe("file");
    expect(top.lstat("/opt/real/keep/old.txt")?.type).toBe("file");
  });
});
