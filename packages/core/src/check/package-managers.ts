// What a command does with packages: installs project dependencies from a manifest, installs or
// updates system packages, or cleans a package manager's cache. Works on the normalised argv
// from shell-commands.ts.
import type { SimpleCommand } from "./shell-commands.js";

/** A dependency install driven by project manifests (package.json, requirements.txt, ...). */
export interface DependencyInstall {
  ecosystem: string;
  /** The command as written, for messages. */
  command: string;
  /** Manifest files to copy before the install. */
  manifests: string[];
  /** True for system packages (apt, apk, ...): they need no project file at all. */
  system: boolean;
}

export type PackageAction = "install" | "update" | "clean";

export interface ManagerAction {
  /** apt, apk, yum, zypper, npm, yarn, pip, composer. */
  manager: string;
  action: PackageAction;
  command: string;
}

const positional = (args: readonly string[], valueFlags: ReadonlySet<string> = new Set()): string[] => {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a.startsWith("-")) {
      if (valueFlags.has(a)) i++;
      continue;
    }
    out.push(a);
  }
  return out;
};

/** Flags that take a separate value, per program, so the subcommand is found after them. */
const VALUE_FLAGS: Record<string, ReadonlySet<string>> = {
  "apt-get": new Set(["-o", "-c", "-t", "--option", "--config-file", "--target-release"]),
  apt: new Set(["-o", "-c", "-t", "--option", "--config-file", "--target-release"]),
  npm: new Set(["--prefix", "--cache", "--registry", "--loglevel", "-w", "--workspace"]),
  yarn: new Set(["--cwd", "--cache-folder", "--modules-folder", "--network-timeout"]),
  pnpm: new Set(["-C", "--dir", "--filter", "-F"]),
  composer: new Set(["-d", "--working-dir"]),
  yum: new Set(["-c", "--config", "--installroot", "--releasever"]),
  dnf: new Set(["-c", "--config", "--installroot", "--releasever"]),
  apk: new Set(["-X", "--repository", "-p", "--root", "--arch"]),
};

/** Program name, subcommand (first word that is not a flag) and the words after it. */
function split(argv: SimpleCommand): { name: string | undefined; sub: string | undefined; rest: string[]; args: string[] } {
  const [name, ...args] = argv;
  const valueFlags = VALUE_FLAGS[name ?? ""] ?? new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a.startsWith("-") || (name === "cargo" && a.startsWith("+"))) {
      if (valueFlags.has(a)) i++;
      continue;
    }
    return { name, sub: a, rest: args.slice(i + 1), args };
  }
  return { name, sub: undefined, rest: [], args };
}

const NPM_VALUE_FLAGS = new Set(["--prefix", "--cache", "--registry", "--omit", "--include", "--loglevel", "-w", "--workspace"]);
const NODE_MANIFESTS = ["package.json", "package-lock.json"];

function pipRequirements(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "-r" || a === "--requirement") return args[i + 1] ?? "requirements.txt";
    if (a.startsWith("--requirement=")) return a.slice("--requirement=".length);
    if (a.startsWith("-r") && a.length > 2) return a.slice(2);
  }
  return undefined;
}

function isPip(name: string): boolean {
  return /^pip[0-9.]*$/.test(name);
}

/** `python -m pip ...` → `pip ...` */
function unwrapPythonModule(argv: SimpleCommand): SimpleCommand {
  const [name, flag, mod, ...rest] = argv;
  if (name !== undefined && /^python[0-9.]*$/.test(name) && flag === "-m" && mod !== undefined) return [mod, ...rest];
  return argv;
}

function install(ecosystem: string, argv: SimpleCommand, manifests: string[], system = false): DependencyInstall {
  return { ecosystem, command: argv.join(" "), manifests, system };
}

/** The dependency install this command performs, if any. */
export function dependencyInstall(raw: SimpleCommand): DependencyInstall | undefined {
  const argv = unwrapPythonModule(raw);
  const { name, sub, rest, args } = split(argv);
  if (name === undefined) return undefined;
  switch (name) {
    case "npm":
      if (sub === "ci") return install("npm", argv, NODE_MANIFESTS);
      if ((sub === "install" || sub === "i") && positional(rest, NPM_VALUE_FLAGS).length === 0) {
        return install("npm", argv, NODE_MANIFESTS);
      }
      return undefined;
    case "yarn":
      if (sub === undefined || sub === "install") {
        return install("yarn", argv, ["package.json", "yarn.lock"]);
      }
      return undefined;
    case "pnpm":
      if (((sub === "install" || sub === "i") && positional(rest).length === 0) || sub === "fetch") {
        return install("pnpm", argv, ["package.json", "pnpm-lock.yaml"]);
      }
      return undefined;
    case "bundle":
      if (sub === undefined || sub === "install") return install("bundler", argv, ["Gemfile", "Gemfile.lock"]);
      return undefined;
    case "go":
      if (sub === "mod" && rest[0] === "download") return install("go", argv, ["go.mod", "go.sum"]);
      return undefined;
    case "mvn":
    case "mvnw": {
      const goals = positional(args);
      if (goals.some((g) => ["package", "install", "verify", "dependency:go-offline", "dependency:resolve"].includes(g))) {
        return install("maven", argv, ["pom.xml"]);
      }
      return undefined;
    }
    case "composer":
      if (sub === "install") return install("composer", argv, ["composer.json", "composer.lock"]);
      return undefined;
    case "cargo":
      if (sub === "fetch" || sub === "build") return install("cargo", argv, ["Cargo.toml", "Cargo.lock"]);
      return undefined;
    case "poetry":
      if (sub === "install") return install("poetry", argv, ["pyproject.toml", "poetry.lock"]);
      return undefined;
    case "pipenv":
      if ((sub === "install" && positional(rest).length === 0) || sub === "sync") {
        return install("pipenv", argv, ["Pipfile", "Pipfile.lock"]);
      }
      return undefined;
    case "uv":
      if (sub === "sync") return install("uv", argv, ["pyproject.toml", "uv.lock"]);
      if (sub === "pip" && rest[0] === "install") {
        const req = pipRequirements(rest);
        return req === undefined ? undefined : install("pip", argv, [req]);
      }
      return undefined;
    case "dotnet":
      if (sub === "restore") return install("dotnet", argv, ["*.csproj"]);
      return undefined;
    case "apt-get":
    case "apt":
      if (sub === "install") return install("apt", argv, [], true);
      return undefined;
    case "apk":
      if (sub === "add") return install("apk", argv, [], true);
      return undefined;
    case "yum":
    case "dnf":
    case "microdnf":
      if (sub === "install") return install("yum", argv, [], true);
      return undefined;
    default:
      if (isPip(name) && sub === "install") {
        const req = pipRequirements(rest);
        return req === undefined ? undefined : install("pip", argv, [req]);
      }
      return undefined;
  }
}

/** Cache directories each manager fills; removing them is a cache clean. */
const CACHE_DIRS: ReadonlyArray<[string, RegExp]> = [
  ["apt", /^\/var\/(lib\/apt\/lists|cache\/apt)(\/|$)/],
  ["apk", /^\/var\/cache\/apk(\/|$)/],
  ["yum", /^\/var\/cache\/(yum|dnf)(\/|$)/],
  ["zypper", /^\/var\/cache\/zypp(\/|$)/],
  ["npm", /^(~|\$HOME|\$\{HOME\}|\/root)\/\.npm(\/|$)/],
  ["yarn", /^((~|\$HOME|\$\{HOME\}|\/root)\/\.cache\/yarn|\/usr\/local\/share\/\.cache\/yarn)(\/|$)/],
  ["pip", /^(~|\$HOME|\$\{HOME\}|\/root)\/\.cache\/pip(\/|$)/],
];

function removedCaches(args: readonly string[]): string[] {
  const managers: string[] = [];
  for (const path of positional(args)) {
    for (const [manager, re] of CACHE_DIRS) if (re.test(path) && !managers.includes(manager)) managers.push(manager);
  }
  return managers;
}

function action(manager: string, act: PackageAction, argv: SimpleCommand): ManagerAction[] {
  return [{ manager, action: act, command: argv.join(" ") }];
}

/** What this command does to a package manager's state: install, update the index, or clean. */
export function managerActions(raw: SimpleCommand): ManagerAction[] {
  const argv = unwrapPythonModule(raw);
  const { name, sub, rest } = split(argv);
  if (name === undefined) return [];
  switch (name) {
    case "rm":
      return removedCaches(argv.slice(1)).map((m) => ({ manager: m, action: "clean", command: argv.join(" ") }));
    case "apt-get":
    case "apt":
    case "aptitude":
      if (sub === "update") return action("apt", "update", argv);
      if (sub !== undefined && ["install", "upgrade", "dist-upgrade", "full-upgrade", "build-dep", "reinstall"].includes(sub)) {
        return action("apt", "install", argv);
      }
      if (sub === "clean" || sub === "autoclean") return action("apt", "clean", argv);
      return [];
    case "apk":
      if (sub === "update") return action("apk", "update", argv);
      if (sub === "add" || sub === "upgrade") return action("apk", "install", argv);
      if (sub === "cache" && (rest[0] === "clean" || rest[0] === "purge")) return action("apk", "clean", argv);
      return [];
    case "yum":
    case "dnf":
    case "microdnf":
      if (sub === "makecache") return action("yum", "update", argv);
      if (sub !== undefined && ["install", "update", "upgrade", "groupinstall", "reinstall", "localinstall"].includes(sub)) {
        return action("yum", "install", argv);
      }
      if (sub === "clean") return action("yum", "clean", argv);
      return [];
    case "zypper":
      if (sub === "refresh" || sub === "ref") return action("zypper", "update", argv);
      if (sub !== undefined && ["install", "in", "update", "up", "dist-upgrade", "dup"].includes(sub)) {
        return action("zypper", "install", argv);
      }
      if (sub === "clean" || sub === "cc") return action("zypper", "clean", argv);
      return [];
    case "npm":
      if (sub === "install" || sub === "i" || sub === "ci") return action("npm", "install", argv);
      if (sub === "cache" && (rest[0] === "clean" || rest[0] === "clear" || rest[0] === "rm")) return action("npm", "clean", argv);
      return [];
    case "yarn":
      if (sub === "cache" && rest[0] === "clean") return action("yarn", "clean", argv);
      if (sub === undefined || sub === "install" || sub === "add") return action("yarn", "install", argv);
      return [];
    case "composer":
      if (sub === "install" || sub === "require" || sub === "update") return action("composer", "install", argv);
      if (sub === "clear-cache" || sub === "clearcache" || sub === "cc") return action("composer", "clean", argv);
      return [];
    default:
      if (isPip(name)) {
        if (sub === "install") return action("pip", "install", argv);
        if (sub === "cache" && (rest[0] === "purge" || rest[0] === "remove")) return action("pip", "clean", argv);
      }
      return [];
  }
}
