// Docker's ARG/ENV scoping, as BuildKit's dockerfile2llb implements it:
// - the global scope holds the automatic platform args (BUILDPLATFORM, TARGETARCH, ...) and the
//   ARGs declared before the first FROM; it is visible to FROM lines only;
// - inside a stage, `ARG NAME` without a default takes the build-arg or global value, `ARG NAME=d`
//   takes the build-arg value or `d` expanded in the stage; a `--build-arg` always wins over a default;
// - ARG values and ENV values share one environment, later definitions replacing earlier ones, so an
//   ENV shadows the ARG of the same name before it (BuildKit's behaviour; the classic builder also let
//   an ENV shadow a later ARG);
// - the proxy variables (HTTP_PROXY, ...) reach RUN from build args without being declared and
//   stay out of history and cache keys unless declared with ARG;
// - a stage built FROM another stage inherits its environment and declared ARGs.
import type { ArgDefinition, ArgInstruction } from "./instructions.js";
import { DockerfileError } from "./errors.js";
import { expandWord, ShellExpansionError, type EnvLookup, type EscapeToken } from "./shell-lexer.js";
import { hostPlatform, type Platform } from "../image/oci.js";

/** The predefined proxy ARGs, usable without an ARG instruction. */
export const PROXY_ARGS: readonly string[] = [
  "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy",
  "ALL_PROXY", "all_proxy",
];

/** The automatic args BuildKit puts in the global scope. */
export const AUTOMATIC_PLATFORM_ARGS: readonly string[] = [
  "BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT", "TARGETPLATFORM", "TARGETOS",
  "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE",
];

/** containerd's platforms.Format (os/arch[/variant]) or FormatAll (with `(osversion)` after the OS). */
function platformString(p: Platform, withOsVersion: boolean): string {
  const version = withOsVersion ? p["os.version"] : undefined;
  const os = version ? `${p.os}(${version})` : p.os;
  return [os, p.architecture, p.variant].filter((s) => s !== undefined && s !== "").join("/");
}

export interface ArgScopeOptions {
  /** `--build-arg` values. */
  buildArgs?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /** Defaults to this machine's platform. */
  buildPlatform?: Platform;
  /** Defaults to the build platform. */
  targetPlatform?: Platform;
  /** The target stage's name, TARGETSTAGE ("default" when the target has no name). */
  target?: string;
  escapeToken?: EscapeToken;
  /** File name for error messages. */
  file?: string;
}

/** One ARG as a stage declared it: the value it got, if any. */
export interface DeclaredArg {
  key: string;
  value?: string;
}

/** The value a build arg takes in a step: its current value in the environment, "" when unset. */
export interface BuildArgValue {
  key: string;
  value: string;
}

function toMap(args: ArgScopeOptions["buildArgs"]): Map<string, string> {
  if (args === undefined) return new Map();
  if (args instanceof Map) return new Map(args);
  return new Map(Object.entries(args as Record<string, string>));
}

function expansionError(file: string | undefined, instr: ArgInstruction, err: unknown): unknown {
  if (err instanceof ShellExpansionError) return new DockerfileError(file ?? "Dockerfile", instr.range, err.message);
  return err;
}

/** The global ARG scope: automatic platform args plus the ARGs before the first FROM. */
export class GlobalArgScope {
  private readonly values = new Map<string, string>();
  private readonly declaredNames = new Set<string>();
  readonly buildArgs: ReadonlyMap<string, string>;
  readonly escapeToken: EscapeToken;
  readonly file: string | undefined;

  constructor(options: ArgScopeOptions = {}) {
    this.buildArgs = toMap(options.buildArgs);
    this.escapeToken = options.escapeToken ?? "\\";
    this.file = options.file;
    const build = options.buildPlatform ?? hostPlatform();
    const target = options.targetPlatform ?? build;
    const defaults: [string, string][] = [
      ["BUILDPLATFORM", platformString(build, false)],
      ["BUILDOS", build.os],
      ["BUILDOSVERSION", build["os.version"] ?? ""],
      ["BUILDARCH", build.architecture],
      ["BUILDVARIANT", build.variant ?? ""],
      ["TARGETPLATFORM", platformString(target, true)],
      ["TARGETOS", target.os],
      ["TARGETOSVERSION", target["os.version"] ?? ""],
      ["TARGETARCH", target.architecture],
      ["TARGETVARIANT", target.variant ?? ""],
      ["TARGETSTAGE", options.target || "default"],
    ];
    for (const [key, value] of defaults) this.values.set(key, this.buildArgs.get(key) ?? value);
  }

  /** Builds the scope and applies the meta ARGs (those before the first FROM) in order. */
  static create(metaArgs: readonly ArgInstruction[], options: ArgScopeOptions = {}): GlobalArgScope {
    const scope = new GlobalArgScope(options);
    for (const instr of metaArgs) scope.declare(instr);
    return scope;
  }

  /**
   * The global scope of a parsed Dockerfile. TARGETSTAGE defaults, as in BuildKit, to the name of
   * the last stage when no target is given.
   */
  static forModel(
    model: { globalArgs: readonly ArgInstruction[]; stages: readonly { name?: string }[]; escapeToken: EscapeToken },
    options: ArgScopeOptions = {},
  ): GlobalArgScope {
    const target = options.target ?? model.stages[model.stages.length - 1]?.name;
    return GlobalArgScope.create(model.globalArgs, { escapeToken: model.escapeToken, ...options, target });
  }

  /** Applies one meta ARG instruction: build arg, else default expanded in the global scope. */
  declare(instr: ArgInstruction): void {
    for (const arg of instr.args) {
      this.declaredNames.add(arg.key);
      let value = this.buildArgs.get(arg.key);
      if (value === undefined && arg.value !== undefined) {
        try {
          value = expandWord(arg.value, this.lookup(), { escapeToken: this.escapeToken }).result;
        } catch (err) {
          throw expansionError(this.file, instr, err);
        }
      }
      if (value !== undefined) this.values.set(arg.key, value);
    }
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  /** True when the name was declared by a meta ARG (automatic args are not "declared"). */
  isDeclared(name: string): boolean {
    return this.declaredNames.has(name);
  }

  /** The variables FROM lines see. */
  lookup(): EnvLookup {
    return (name) => this.values.get(name);
  }

  entries(): [string, string][] {
    return [...this.values];
  }

  /**
   * Proxy variables for RUN, from build args matched case-insensitively like BuildKit, each set in
   * both spellings (HTTP_PROXY and http_proxy).
   */
  proxyEnv(): Map<string, string> {
    const chosen = new Map<string, string>();
    const keys = [...this.buildArgs.keys()].sort();
    for (const key of keys) {
      const lower = key.toLowerCase();
      if (PROXY_ARGS.includes(lower)) chosen.set(lower, this.buildArgs.get(key) as string);
    }
    const out = new Map<string, string>();
    for (const [lower, value] of chosen) {
      if (value === "") continue;
      out.set(lower.toUpperCase(), value);
      out.set(lower, value);
    }
    return out;
  }

  /** A new stage scope; pass the base stage's scope when the stage is built FROM another stage. */
  newStage(base?: StageEnv): StageEnv {
    return new StageEnv(this, base);
  }
}

type Source = "arg" | "env";

/** The variables of one stage, updated step by step as the engine dispatches instructions. */
export class StageEnv {
  private readonly vars = new Map<string, string>();
  private readonly sources = new Map<string, Source>();
  private readonly declared: DeclaredArg[] = [];

  constructor(
    readonly global: GlobalArgScope,
    base?: StageEnv,
  ) {
    if (base) {
      for (const [k, v] of base.vars) this.vars.set(k, v);
      for (const [k, s] of base.sources) this.sources.set(k, s);
      this.declared.push(...base.declared.map((d) => ({ ...d })));
    }
  }

  /** Seeds the environment from the base image's config Env ("K=V" strings). */
  setImageEnv(env: Iterable<string>): void {
    for (const item of env) {
      const eq = item.indexOf("=");
      this.setEnv(eq < 0 ? item : item.slice(0, eq), eq < 0 ? "" : item.slice(eq + 1));
    }
  }

  setEnv(key: string, value: string): void {
    this.vars.set(key, value);
    this.sources.set(key, "env");
  }

  /**
   * Declares one ARG as BuildKit's dispatchArg does and returns the value it got. `instr` is only
   * used to locate expansion errors.
   */
  declareArg(arg: ArgDefinition, instr?: ArgInstruction): DeclaredArg {
    const buildArg = this.global.buildArgs.get(arg.key);
    let value: string | undefined;
    if (buildArg !== undefined) value = buildArg;
    else if (arg.value !== undefined) {
      try {
        value = expandWord(arg.value, this.lookup(), { escapeToken: this.global.escapeToken }).result;
      } catch (err) {
        throw instr ? expansionError(this.global.file, instr, err) : err;
      }
    } else value = this.global.get(arg.key);
    if (value !== undefined) {
      this.vars.set(arg.key, value);
      this.sources.set(arg.key, "arg");
    }
    const declared: DeclaredArg = value === undefined ? { key: arg.key } : { key: arg.key, value };
    this.declared.push(declared);
    return declared;
  }

  declareArgs(instr: ArgInstruction): DeclaredArg[] {
    return instr.args.map((arg) => this.declareArg(arg, instr));
  }

  get(name: string): string | undefined {
    return this.vars.get(name);
  }

  /** The variables word expansion sees in this stage (ARG values and ENV, not undeclared proxies). */
  lookup(): EnvLookup {
    return (name) => this.vars.get(name);
  }

  /** The environment a RUN process gets, "K=V": stage variables, then undeclared proxy variables. */
  runEnv(): string[] {
    const out = [...this.vars].map(([k, v]) => `${k}=${v}`);
    for (const [k, v] of this.global.proxyEnv()) if (!this.vars.has(k)) out.push(`${k}=${v}`);
    return out;
  }

  /** The ARGs declared so far (inherited ones first), in order, with the value each got. */
  declaredArgs(): DeclaredArg[] {
    return this.declared.map((d) => ({ ...d }));
  }

  /**
   * The build args a RUN uses, as BuildKit records them in history and the cache key: every
   * declared ARG once (first declaration's position), valued from the current environment (so a
   * later ENV of the same name shows), "" when unset. Undeclared proxy args never appear.
   */
  usedBuildArgs(): BuildArgValue[] {
    const out: BuildArgValue[] = [];
    const index = new Map<string, number>();
    for (const d of this.declared) {
      const value = this.vars.get(d.key) ?? d.value ?? "";
      const at = index.get(d.key);
      if (at === undefined) {
        index.set(d.key, out.length);
        out.push({ key: d.key, value });
      } else out[at] = { key: d.key, value };
    }
    return out;
  }

  /** BuildKit's RUN history prefix, `|2 A=1 B=2` (empty when no ARG is declared). */
  runHistoryPrefix(): string {
    const args = this.usedBuildArgs();
    return args.length === 0 ? "" : [`|${args.length}`, ...args.map((a) => `${a.key}=${a.value}`)].join(" ");
  }

  /**
   * Of the variables an expansion used (ExpandedInstruction.usedArgs), those whose value currently
   * comes from an ARG rather than an ENV: what a cache key must include for non-RUN steps.
   */
  buildArgsAmong(names: Iterable<string>): BuildArgValue[] {
    const out: BuildArgValue[] = [];
    for (const name of names) {
      if (this.sources.get(name) === "arg") out.push({ key: name, value: this.vars.get(name) as string });
    }
    return out;
  }
}
