// `--progress=tty` on a real terminal: a build runs inside a tmux pane (a real pseudo-terminal and terminal
// emulator); the pane is sampled while the build runs and after it ends, and tmux records the raw bytes.
import { describe, it, expect, beforeAll, afterAll, vi } from "vitest";
import { copyFile, mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { requireTool } from "./support/tools.js";
import { sleep } from "./support/process.js";
import type { BuildEvent, StepRef } from "@kiln/core";
import { ttyProgress } from "../packages/cli/src/progress/tty.js";

const exec = promisify(execFile);
const repo = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const cli = path.join(repo, "packages/cli/dist/main.js");
const COLUMNS = 120;
const ROWS = 40;

// Two stages that log at the same time, then a stage that joins them.
const DOCKERFILE = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
FROM busybox AS a
RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "a line $i" >&2; sleep 0.25; done; echo a > /a.txt
FROM busybox AS b
RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "b line $i"; sleep 0.25; done; echo b > /b.txt
FROM busybox
COPY --from=a /a.txt /a.txt
COPY --from=b /b.txt /b.txt
RUN sleep 1
`;

const FAILING = `FROM scratch AS busybox
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo step-one; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "fail line $i"; done; sleep 0.5; exit 3
`;

let work: string;
let tmux: string;
let panes = 0;

/** The CLI once build.ts wires the tty renderer in; until then a driver doing what the CLI will do. */
function command(ctx: string, store: string): string {
  const wired = readFileSync(path.join(repo, "packages/cli/src/commands/build.ts"), "utf8").includes("ttyProgress");
  if (wired) return `'${process.execPath}' '${cli}' build --progress=tty --parallelism 2 --store '${store}' '${ctx}'`;
  return `'${process.execPath}' '${path.join(work, "driver.mjs")}' '${ctx}' '${store}'`;
}

async function writeDriver(): Promise<void> {
  const core = pathToFileURL(path.join(repo, "packages/core/dist/index.js")).href;
  const tty = pathToFileURL(path.join(repo, "packages/cli/dist/progress/tty.js")).href;
  await writeFile(
    path.join(work, "driver.mjs"),
    `import { build } from ${JSON.stringify(core)};
import { ttyProgress } from ${JSON.stringify(tty)};
const [context, store] = process.argv.slice(2);
const controller = new AbortController();
process.once("SIGINT", () => controller.abort(new Error("interrupted")));
const progress = ttyProgress({ write: (s) => process.stderr.write(s) });
const run = build({ context, store, parallelism: 2, signal: controller.signal });
run.onEvent((e) => progress.onEvent(e));
try {
  const result = await run.result;
  progress.stop();
  process.stdout.write(result.imageId + "\\n");
} catch (err) {
  progress.stop();
  process.stderr.write("ERROR: " + err.message + "\\n");
  process.exitCode = 1;
}
`,
  );
}

async function context(name: string, dockerfile: string): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "Dockerfile"), dockerfile);
  await copyFile(requireTool("busybox"), path.join(dir, "busybox"));
  return dir;
}

// A private tmux server whose socket lives (and is removed) with the test's temp dir.
const tm = (...args: string[]) => exec(tmux, ["-S", path.join(work, "tmux.sock"), ...args]);

/** Visible pane text, trailing blank lines dropped. */
async function capture(pane: string, colors = false, history = false): Promise<string[]> {
  const { stdout } = await tm("capture-pane", "-p", ...(colors ? ["-e"] : []), ...(history ? ["-S", "-"] : []), "-t", pane);
  const lines = stdout.split("\n");
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  return lines;
}

interface PaneRun {
  /** Distinct pane contents seen while the build ran. */
  samples: string[][];
  final: string[];
  finalColored: string[];
  /** Every byte the build wrote to the terminal. */
  bytes: string;
}

/** Run a shell command in a fresh pane; the command waits for a go file so no output is missed. */
async function runInPane(
  cmd: string,
  size = { columns: COLUMNS, rows: ROWS },
  onSample?: (lines: string[], pane: string) => Promise<void>,
): Promise<PaneRun> {
  const pane = `p${++panes}`;
  const go = path.join(work, `${pane}.go`);
  const log = path.join(work, `${pane}.bytes`);
  const script = `while [ ! -e '${go}' ]; do sleep 0.05; done; ${cmd}; echo KILN-END rc=$?; exec sleep 600`;
  // The server exits with its last session; a new-session racing that exit fails with "server exited
  // unexpectedly" and is simply retried (it then starts a fresh server).
  for (let attempt = 1; ; attempt++) {
    try {
      await tm("new-session", "-d", "-x", String(size.columns), "-y", String(size.rows), "-s", pane, script);
      break;
    } catch (err) {
      if (attempt >= 5 || !String((err as Error).message).includes("server exited unexpectedly")) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    await tm("pipe-pane", "-o", "-t", pane, `cat > '${log}'`);
    await writeFile(go, "");
    const samples: string[][] = [];
    const deadline = Date.now() + 180_000;
    for (;;) {
      const lines = await capture(pane);
      if (lines.some((l) => l.startsWith("KILN-END"))) break;
      if (Date.now() > deadline) throw new Error(`build did not finish:\n${lines.join("\n")}`);
      if (lines.length > 0 && samples.at(-1)?.join("\n") !== lines.join("\n")) {
        samples.push(lines);
        await onSample?.(lines, pane);
      }
      await sleep(80);
    }
    // With the scrollback: a final frame taller than a small pane scrolls.
    const final = await capture(pane, false, true);
    const finalColored = await capture(pane, true);
    await tm("pipe-pane", "-t", pane);
    return { samples, final, finalColored, bytes: existsSync(log) ? await readFile(log, "utf8") : "" };
  } finally {
    await tm("kill-session", "-t", pane).catch(() => undefined);
  }
}

const STEP = /^ => (CACHED |ERROR |CANCELED )?(\[[^\]]+\] .*?) +(?:\S+ \/ \S+ )?(\d+\.\d)s$/;
const HEADER = /^\[\+\] Building (\d+\.\d)s \((\d+)\/(\d+)\)( FINISHED| ERROR)?$/;

/** What any frame must look like: one header on top, then only whole " => " lines, each step once. */
function expectCleanFrame(lines: string[], columns = COLUMNS): void {
  expect(lines[0]).toMatch(HEADER);
  expect(lines.filter((l) => HEADER.test(l))).toHaveLength(1);
  const labels: string[] = [];
  for (const line of lines.slice(1)) {
    expect(line.length).toBeLessThan(columns);
    expect(line).not.toMatch(/\x1b|\[[0-9;]*[mK]|\[\d+[ABJ]/);
    expect(line.startsWith(" => ")).toBe(true);
    const step = STEP.exec(line);
    if (step) labels.push(step[2]!);
    else expect(line).toMatch(/^ => => (# |cache miss: )/);
  }
  expect(new Set(labels).size).toBe(labels.length);
}

/** The frame part of a final capture: header up to the first line that is not a frame line. */
function splitFinal(final: string[]): { frame: string[]; after: string[] } {
  const start = final.findIndex((l) => HEADER.test(l));
  let end = start + 1;
  while (end < final.length && final[end]!.startsWith(" => ")) end++;
  return { frame: final.slice(start, end), after: final.slice(end) };
}

function instructions(dockerfile: string): string[] {
  return dockerfile.split("\n").filter((l) => l.trim() !== "");
}

function frames(bytes: string): number {
  return bytes.split("[+] Building ").length - 1;
}

beforeAll(async () => {
  tmux = requireTool("tmux");
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-tty-"));
  await writeDriver();
});
afterAll(async () => {
  if (tmux) await tm("kill-server").catch(() => undefined);
  if (work) await rm(work, { recursive: true, force: true });
});

describe("kiln build --progress=tty in a terminal", () => {
  const store = () => path.join(work, "store");

  it("redraws running steps in place, shows parallel stages at once, and ends on a clean final frame", async () => {
    const ctx = await context("ctx", DOCKERFILE);
    const { samples, final, bytes } = await runInPane(command(ctx, store()));

    // Live: every sample is a whole frame, no leftovers of earlier frames or half-written escapes.
    expect(samples.length).toBeGreaterThan(3);
    for (const s of samples) {
      // A sample may catch the final frame with the image ID under it, before the end marker.
      const { frame: shown, after: below } = splitFinal(s);
      expectCleanFrame(shown);
      for (const l of below) expect(l).toMatch(/^sha256:[0-9a-f]{64}$/);
    }

    // The view moved on its own: some running step's timer changed between two samples.
    const times = samples.map((s) => {
      const m = new Map<string, string>();
      for (const step of s.map((l) => STEP.exec(l))) if (step) m.set(step[2]!, step[3]!);
      return m;
    });
    const ticked = [...times.entries()].some(([i, m]) => times.slice(i + 1).some((later) => [...m].some(([label, t]) => later.has(label) && later.get(label) !== t)));
    expect(ticked).toBe(true);
    // Both stages' logs were on screen at the same time, each under its own step, at most 6 lines each.
    const both = samples.find((s) => s.some((l) => l.includes("# a line")) && s.some((l) => l.includes("# b line")));
    expect(both).toBeDefined();
    for (const s of samples) {
      expect(s.filter((l) => l.includes("# a line")).length).toBeLessThanOrEqual(6);
      expect(s.filter((l) => l.includes("# b line")).length).toBeLessThanOrEqual(6);
    }
    const aStep = both!.findIndex((l) => l.includes("RUN for i") && l.includes('"a line'));
    const below = both!.slice(aStep + 1);
    const end = below.findIndex((l) => !l.startsWith(" => => #"));
    const aLogs = end < 0 ? below : below.slice(0, end);
    expect(aLogs.length).toBeGreaterThan(0);
    for (const l of aLogs) expect(l).toMatch(/^ => => # a line \d+$/);

    // Final: header with the full count, every step exactly once, logs collapsed, then the image ID and
    // the shell's next line each at column 0.
    const { frame, after } = splitFinal(final);
    expectCleanFrame(frame);
    const steps = instructions(DOCKERFILE);
    const header = HEADER.exec(frame[0]!)!;
    expect(header[4]).toBe(" FINISHED");
    expect(Number(header[2])).toBe(steps.length);
    expect(Number(header[3])).toBe(steps.length);
    expect(frame).toHaveLength(steps.length + 1);
    const shown = frame.slice(1).map((l) => STEP.exec(l)![2]!.replace(/^\[[^\]]+\] /, ""));
    const matches = (text: string, instruction: string) => text === instruction || (text.endsWith("…") && instruction.startsWith(text.slice(0, -1)));
    for (const instruction of steps) expect(shown.filter((text) => matches(text, instruction))).toHaveLength(1);
    expect(frame.some((l) => l.startsWith(" => => "))).toBe(false);
    expect(frame.filter((l) => l.startsWith(" => CACHED ["))).toHaveLength(4); // the FROM lines
    expect(after).toEqual([expect.stringMatching(/^sha256:[0-9a-f]{64}$/), "KILN-END rc=0"]);

    // The bytes: cursor-up redraws, never a full-screen clear, at most ~10 frames a second, and lines
    // that did not change were not rewritten.
    expect(bytes).toMatch(/\x1b\[\d+A/);
    expect(bytes).not.toContain("\x1b[2J");
    expect(bytes).not.toContain("\x1b[H");
    const seconds = Number(header[1]);
    expect(frames(bytes)).toBeGreaterThan(10);
    expect(frames(bytes)).toBeLessThanOrEqual(Math.ceil(seconds * 11) + 5);
    // Once cached, the first step's line never changes, so it is sent once however many frames follow.
    expect(bytes.split("CACHED [busybox 1/3] FROM scratch AS busybox").length - 1).toBe(1);
  });

  it("a rebuild shows every step CACHED", async () => {
    const ctx = path.join(work, "ctx");
    const { final } = await runInPane(command(ctx, store()));
    const { frame, after } = splitFinal(final);
    expectCleanFrame(frame);
    const steps = instructions(DOCKERFILE);
    expect(frame.filter((l) => l.startsWith(" => CACHED ["))).toHaveLength(steps.length);
    expect(after.at(-1)).toBe("KILN-END rc=0");
  });

  it("shows a failed step in red with its last log lines, and the error on a fresh line", async () => {
    const ctx = await context("ctx-fail", FAILING);
    const { final, finalColored } = await runInPane(command(ctx, store()));
    const { frame, after } = splitFinal(final);
    expectCleanFrame(frame);
    expect(frame[0]).toMatch(/ ERROR$/);
    const failed = frame.findIndex((l) => l.startsWith(" => ERROR [") && l.includes("RUN echo step-one"));
    expect(failed).toBeGreaterThan(0);
    const logs = frame.slice(failed + 1).filter((l) => l.startsWith(" => => # "));
    expect(logs.at(-1)).toBe(" => => # fail line 12");
    expect(logs.length).toBeGreaterThan(1);
    expect(logs.length).toBeLessThanOrEqual(10);
    expect(frame.some((l) => l === " => => # fail line 1")).toBe(false);
    expect(finalColored.some((l) => /\x1b\[31m => ERROR \[/.test(l))).toBe(true);
    expect(after[0]).toMatch(/^ERROR: /);
    expect(after.at(-1)).toBe("KILN-END rc=1");
  });

  it("clips lines to a narrow terminal, keeps live frames within its height, shows byte counters", async () => {
    // Events the engine does not emit yet (step-progress) and more parallel steps than rows, replayed
    // into a 60x15 pane. Fake timers drive the 100 ms redraw so each frame's bytes are known.
    const size = { columns: 60, rows: 15 };
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    let t = 0;
    let bytes = "";
    const frameEnds: number[] = [];
    const progress = ttyProgress({ write: (s) => (bytes += s), ...size, now: () => t });
    const tick = (ms: number) => {
      t += ms;
      vi.advanceTimersByTime(ms);
      frameEnds.push(bytes.length);
    };
    const ref = (stage: string, index: number, total: number, instruction: string): StepRef => ({ id: `${stage}/${index}`, stage, index, total, instruction, line: index });
    const stages = ["worker0", "worker1", "worker2"];
    const cachedSteps = Array.from({ length: 10 }, (_, i) => ref("base", i + 1, 10, `COPY part${i} /opt/part${i}`));
    const fetch = ref("fetch", 1, 1, "ADD https://example.com/releases/download/v1.2.3/toolchain-linux-amd64.tar.gz /opt/");
    const runs = stages.map((s) => ref(s, 1, 1, `RUN ./build.sh --component ${s} --with-a-long-list-of-flags --verbose`));
    // Double-width characters: clipped by terminal cells, not by string length.
    runs.push(ref("wide", 1, 1, `RUN echo ${"漢".repeat(40)}`));
    const send = (e: BuildEvent) => progress.onEvent(e);
    try {
      send({ type: "build-start", dockerfile: "Dockerfile", context: ".", target: "worker2", stages: ["base", "fetch", ...stages, "wide"] });
      for (const c of cachedSteps) {
        send({ type: "step-start", step: c });
        send({ type: "step-end", step: c, cached: true, durationMs: 0, cacheKey: "sha256:0", layer: undefined });
      }
      send({ type: "step-start", step: fetch });
      send({ type: "step-progress", step: fetch, current: 12_500_000, total: 170_000_000, unit: "bytes" });
      for (const r of runs) {
        send({ type: "step-start", step: r });
        send({ type: "step-log", step: r, stream: "stdout", data: `compiling ${r.stage}\n\x1b[31mwarning:\x1b[0m ${"x".repeat(200)}\n` });
        send({ type: "step-log", step: r, stream: "stderr", data: "progress 10%\rprogress 55%" });
      }
      tick(100);
      t += 1500;
      send({ type: "step-progress", step: fetch, current: 170_000_000, total: 170_000_000, unit: "bytes" });
      send({ type: "step-end", step: fetch, cached: false, durationMs: 1600, cacheKey: "sha256:0", layer: undefined });
      for (const r of runs) send({ type: "step-end", step: r, cached: false, durationMs: 1600, cacheKey: "sha256:0", layer: undefined });
      send({ type: "build-end", imageId: "sha256:1", manifestDigest: "sha256:2", durationMs: 1600 });
      tick(100);
      progress.stop();
    } finally {
      vi.useRealTimers();
    }

    // The first live frame, as the terminal shows it: finished steps make room for running ones, whose
    // log tails shrink to fit the 15 rows.
    const live = path.join(work, "live.bytes");
    await writeFile(live, bytes.slice(0, frameEnds[0]));
    const first = (await runInPane(`cat '${live}'`, size)).final.filter((l) => !l.startsWith("KILN-END"));
    expectCleanFrame(first, size.columns);
    expect(first.length).toBeLessThan(size.rows);
    expect(first.some((l) => l.includes("CACHED"))).toBe(false);
    expect(first.some((l) => /ADD https:.*… 12\.5MB \/ 170MB 0\.1s$/.test(l))).toBe(true);
    expect(first.filter((l) => l === " => => # progress 55%")).toHaveLength(4);
    expect(first.filter((l) => l.startsWith(" => => # warning: xxx") && l.endsWith("…"))).toHaveLength(4);
    const wide = first.find((l) => l.startsWith(" => [wide 1/1] RUN echo 漢"));
    expect(wide).toMatch(/漢… +0\.1s$/);
    expect(wide!.length + (wide!.match(/漢/g) ?? []).length).toBeLessThan(size.columns);
    expect(first.some((l) => l.includes("compiling"))).toBe(false);

    // The whole run: the final frame lists every step, taller than the pane, and scrolls cleanly.
    const all = path.join(work, "all.bytes");
    await writeFile(all, bytes);
    const { frame, after } = splitFinal((await runInPane(`cat '${all}'`, size)).final);
    expectCleanFrame(frame, size.columns);
    expect(frame[0]).toBe("[+] Building 1.6s (15/15) FINISHED");
    expect(frame).toHaveLength(16);
    expect(frame.filter((l) => l.startsWith(" => CACHED [base "))).toHaveLength(10);
    expect(frame.some((l) => l.includes("170MB / 170MB 1.6s"))).toBe(true);
    expect(after).toEqual(["KILN-END rc=0"]);
  });

  it("an interrupted build (Ctrl-C) still ends on a clean final frame", async () => {
    const ctx = await context("ctx-int", `${instructions(FAILING).slice(0, 3).join("\n")}\nRUN echo started; sleep 60\n`);
    let interrupted = false;
    const { final } = await runInPane(command(ctx, store()), undefined, async (lines, pane) => {
      if (!interrupted && lines.includes(" => => # started")) {
        interrupted = true;
        await tm("send-keys", "-t", pane, "C-c");
      }
    });
    expect(interrupted).toBe(true);
    const { frame, after } = splitFinal(final);
    expectCleanFrame(frame);
    expect(frame[0]).toMatch(/ (ERROR|CANCELED)$/);
    expect(frame.find((l) => l.includes("RUN echo started"))).toMatch(/^ => ERROR \[/);
    expect(after.at(-1)).toMatch(/^KILN-END rc=[1-9]/);
  });
});
