// kiln's own advice on layer caching and image size:
// - CopyAllBeforeDependencyInstall: `COPY . .` before a dependency install makes any source edit
//   re-run the install; copy the manifests first.
// - PackageCacheInSeparateLayer: a cache cleaned in a later RUN still ships in the earlier layer.
// - AptGetUpdateAlone: an `apt-get update` cached on its own leaves later installs with a stale index.
import type { AddInstruction, CopyInstruction, RunInstruction, StageInstruction } from "../dockerfile/instructions.js";
import type { CheckContext, StageView } from "./context.js";
import { dependencyInstall, managerActions, type DependencyInstall, type ManagerAction } from "./package-managers.js";
import { RULES } from "./rules.js";
import { runCommands } from "./run-commands.js";
import type { SimpleCommand } from "./shell-commands.js";

interface RunInfo {
  run: RunInstruction;
  installs: DependencyInstall[];
  actions: ManagerAction[];
}

/** COPY/ADD of the whole context: `.`, `./`, `*`, `/` (COPY sources are context-relative). */
function isBroadCopy(instr: StageInstruction): instr is CopyInstruction | AddInstruction {
  if (instr.kind !== "copy" && instr.kind !== "add") return false;
  if (instr.kind === "copy" && instr.from !== undefined) return false;
  return instr.sources.some((src) => {
    const s = src.replace(/^(\.\/)+/, "").replace(/\/+$/, "").replace(/^\/+/, "");
    return s === "" || s === "." || s === "*" || s === "./*" || s === "./.";
  });
}

function describeRun(run: RunInstruction): RunInfo {
  const commands: SimpleCommand[] = runCommands(run);
  return {
    run,
    installs: commands.map(dependencyInstall).filter((d): d is DependencyInstall => d !== undefined),
    actions: commands.flatMap(managerActions),
  };
}

const firstLine = (text: string): string => text.split("\n")[0] ?? text;

export function checkCacheRules(ctx: CheckContext): void {
  for (const view of ctx.stages) {
    const runs = new Map<StageInstruction, RunInfo>();
    for (const { instr } of view.entries) if (instr.kind === "run") runs.set(instr, describeRun(instr));
    copyAllBeforeInstall(ctx, view, runs);
    separateCacheCleaning(ctx, view, runs);
    aptUpdateAlone(ctx, view, runs);
  }
}

function copyAllBeforeInstall(ctx: CheckContext, view: StageView, runs: Map<StageInstruction, RunInfo>): void {
  let broad: CopyInstruction | AddInstruction | undefined;
  /** Ecosystems installed before the broad copy: their dependencies are cached in a layer of their own. */
  let installedBefore = new Set<string>();
  const installed = new Set<string>();
  for (const { instr } of view.entries) {
    if (isBroadCopy(instr)) {
      if (broad === undefined) installedBefore = new Set(installed);
      broad ??= instr;
      continue;
    }
    const info = runs.get(instr);
    if (!info) continue;
    const reported = new Set<string>();
    for (const dep of info.installs) {
      if (broad && !installedBefore.has(dep.ecosystem) && !reported.has(dep.ecosystem)) {
        reported.add(dep.ecosystem);
        reportCopyAll(ctx, broad, info.run, dep);
      }
    }
    for (const dep of info.installs) installed.add(dep.ecosystem);
  }
}

function reportCopyAll(ctx: CheckContext, copy: CopyInstruction | AddInstruction, run: RunInstruction, dep: DependencyInstall): void {
  const copyText = firstLine(copy.original);
  const runText = firstLine(run.original);
  const where = `line ${copy.range.startLine}`;
  const dest = copy.dest;
  const fix = dep.system
    ? `This RUN needs nothing from the build context: move it above \`${copyText}\` (${where}) so it stays cached when sources change.`
    : [
        `Copy only the dependency manifests before installing, then the rest:`,
        `  COPY ${[...dep.manifests, dest.endsWith("/") ? dest : `${dest}/`].join(" ")}`,
        `  ${runText}`,
        `  ${copyText}`,
      ].join("\n");
  ctx.collector.report({
    rule: RULES.CopyAllBeforeDependencyInstall,
    range: run.range,
    message: `'${dep.command}' runs after '${copyText}' (${where}) copied the whole build context: any source change re-runs the install`,
    fix,
    comments: run.comments,
  });
}

function separateCacheCleaning(ctx: CheckContext, view: StageView, runs: Map<StageInstruction, RunInfo>): void {
  const earlier: RunInfo[] = [];
  for (const { instr } of view.entries) {
    const info = runs.get(instr);
    if (!info) continue;
    const reported = new Set<string>();
    for (const a of info.actions) {
      if (a.action !== "clean" || reported.has(a.manager)) continue;
      const installsHere = info.actions.some((b) => b.manager === a.manager && b.action !== "clean");
      if (installsHere) continue;
      reported.add(a.manager);
      const installer = [...earlier].reverse().find((r) => r.actions.some((b) => b.manager === a.manager && b.action !== "clean"));
      const cleaning = info.actions.filter((b) => b.manager === a.manager && b.action === "clean").map((b) => b.command);
      const fix = installer
        ? `Clean in the RUN that installs (line ${installer.run.range.startLine}), and drop this one:\n  ${firstLine(installer.run.original)} \\\n   && ${cleaning.join(" \\\n   && ")}`
        : `Clean in the same RUN that downloads the packages (append \`&& ${cleaning.join(" && ")}\` to it); deleting files in a later layer never makes an image smaller.`;
      ctx.collector.report({
        rule: RULES.PackageCacheInSeparateLayer,
        range: instr.range,
        message: `'${cleaning.join(" && ")}' cleans the ${a.manager} cache in its own layer${installer ? ` (installed at line ${installer.run.range.startLine})` : ""}: the files still ship in the earlier layer`,
        fix,
        comments: instr.comments,
      });
    }
    earlier.push(info);
  }
}

function aptUpdateAlone(ctx: CheckContext, view: StageView, runs: Map<StageInstruction, RunInfo>): void {
  const infos = view.entries.map((e) => runs.get(e.instr)).filter((r): r is RunInfo => r !== undefined);
  infos.forEach((info, i) => {
    const apt = info.actions.filter((a) => a.manager === "apt");
    const update = apt.find((a) => a.action === "update");
    if (!update || apt.some((a) => a.action === "install")) return;
    const later = infos.slice(i + 1).find((r) => r.actions.some((a) => a.manager === "apt" && a.action === "install"));
    const install = later?.actions.find((a) => a.manager === "apt" && a.action === "install");
    const fix = later && install
      ? `Update and install in one RUN, and drop this one:\n  RUN ${update.command} && ${install.command}`
      : `Run \`${update.command} && apt-get install -y --no-install-recommends <packages> && rm -rf /var/lib/apt/lists/*\` in one RUN.`;
    ctx.collector.report({
      rule: RULES.AptGetUpdateAlone,
      range: info.run.range,
      message: `'${update.command}' without an install in the same RUN: its cached layer keeps a stale package index${later ? ` for the install at line ${later.run.range.startLine}` : ""}`,
      fix,
      comments: info.run.comments,
    });
  });
}
