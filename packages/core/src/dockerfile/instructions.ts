// Typed Dockerfile instructions: one interface per instruction, discriminated by `kind`, built
// from parser nodes with BuildKit's argument checks, flags and messages
// (frontend/dockerfile/instructions/parse.go). Nothing is word-expanded here; see
// instruction-expand.ts for the fields BuildKit expands at dispatch time.
import type { DockerfileAst, Heredoc, InstructionNode, SourceRange } from "./ast.js";
import { DockerfileError } from "./errors.js";
import { parseGoDuration, ONE_MILLISECOND_NS } from "./instruction-duration.js";
import { InstructionError } from "./instruction-error.js";
import { parseFlags, type FlagSpec, type ParsedFlags } from "./instruction-flags.js";
import { parseHeredocWord } from "./instruction-heredoc.js";
import {
  checkMountFromLiteral,
  parseRunDevice,
  parseRunMount,
  type RunDevice,
  type RunMount,
} from "./instruction-mounts.js";
import { withSuggestion } from "./suggest.js";

export type { RunDevice, RunMount } from "./instruction-mounts.js";

interface InstructionBase {
  /** The source location of the whole instruction (continuation lines and heredocs included). */
  range: SourceRange;
  /** The instruction text as written, continuations joined and surrounding space trimmed. */
  original: string;
  /** Comment lines right above the instruction. */
  comments: string[];
}

/** `NAME=value` (or legacy `NAME value`) pairs of ENV and LABEL. */
export interface KeyValuePair {
  key: string;
  value: string;
  /** True for the legacy whitespace-separated form (`ENV A 1`), which BuildKit lints. */
  noDelim: boolean;
}

export interface FromInstruction extends InstructionBase {
  kind: "from";
  /** Base image or stage reference, unexpanded (global ARGs apply). */
  image: string;
  /** `--platform` value, unexpanded. */
  platform?: string;
  /** Lower-cased `AS` name. */
  stageName?: string;
}

/** A heredoc attached to RUN/CMD/ENTRYPOINT, written to a file or fed to the shell. */
export interface ShellInlineFile {
  name: string;
  data: string;
  /** `<<-`: strip leading tabs from every line before use. */
  chomp: boolean;
}

interface ShellDependentCommand {
  /** Shell form: one element, the command line (the shell is prepended when run); exec form: argv. */
  command: string[];
  /** True for shell form: run through the stage's SHELL. */
  prependShell: boolean;
  files: ShellInlineFile[];
}

export type NetworkMode = "default" | "none" | "host";
export type SecurityMode = "sandbox" | "insecure";

export interface RunInstruction extends InstructionBase, ShellDependentCommand {
  kind: "run";
  /** Raw `--mount` values, in order. */
  mountSpecs: string[];
  /**
   * Mounts parsed from `mountSpecs` without expansion, or undefined when some value uses a
   * variable; `expandInstruction` always resolves them against the stage environment.
   */
  mounts: RunMount[] | undefined;
  network: NetworkMode;
  security: SecurityMode;
  devices: RunDevice[];
  /** Names of the flags given, in order. */
  flagsUsed: string[];
}

export interface CmdInstruction extends InstructionBase, ShellDependentCommand {
  kind: "cmd";
}

export interface EntrypointInstruction extends InstructionBase, Omit<ShellDependentCommand, "command"> {
  kind: "entrypoint";
  /** null for `ENTRYPOINT []`, which clears the entrypoint (and CMD) of the image. */
  command: string[] | null;
}

export interface LabelInstruction extends InstructionBase {
  kind: "label";
  labels: KeyValuePair[];
}

export interface MaintainerInstruction extends InstructionBase {
  kind: "maintainer";
  maintainer: string;
}

export interface ExposeInstruction extends InstructionBase {
  kind: "expose";
  /** Port words, unexpanded, sorted like BuildKit does. */
  ports: string[];
}

export interface EnvInstruction extends InstructionBase {
  kind: "env";
  env: KeyValuePair[];
}

/** An inline file given as a COPY/ADD heredoc source. */
export interface SourceContent {
  /** The heredoc name, used as the file name. */
  path: string;
  data: string;
  /** False when the delimiter was quoted: no variable expansion of the body. */
  expand: boolean;
}

interface SourcesAndDest {
  /** Path (or URL) sources, unexpanded. */
  sources: string[];
  /** Heredoc sources. */
  contents: SourceContent[];
  dest: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** `--exclude` patterns (repeatable), not expanded. */
  excludes: string[];
}

export interface CopyInstruction extends InstructionBase, SourcesAndDest {
  kind: "copy";
  /** `--from` stage name, index or image; never expanded. */
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends InstructionBase, SourcesAndDest {
  kind: "add";
  checksum?: string;
  /** undefined when `--keep-git-dir` was not given. */
  keepGitDir?: boolean;
  /** undefined when `--unpack` was not given (archives from the context are unpacked, URLs are not). */
  unpack?: boolean;
}

export interface VolumeInstruction extends InstructionBase {
  kind: "volume";
  volumes: string[];
}

export interface UserInstruction extends InstructionBase {
  kind: "user";
  user: string;
}

export interface WorkdirInstruction extends InstructionBase {
  kind: "workdir";
  path: string;
}

export interface ArgDefinition {
  key: string;
  /** The default, unexpanded; undefined for a bare `ARG NAME`. */
  value?: string;
}

export interface ArgInstruction extends InstructionBase {
  kind: "arg";
  args: ArgDefinition[];
}

export interface OnbuildInstruction extends InstructionBase {
  kind: "onbuild";
  /** The trigger as stored in the image config: the text after ONBUILD, heredoc bodies appended. */
  expression: string;
  /** The trigger parsed as an instruction; undefined when it does not parse (BuildKit only fails downstream). */
  child?: Instruction;
  /** Why `child` is missing. */
  childError?: string;
}

export interface StopsignalInstruction extends InstructionBase {
  kind: "stopsignal";
  signal: string;
}

/** The image config's Healthcheck, durations in nanoseconds (0 = inherit/default). */
export interface HealthcheckSpec {
  /** ["NONE"], ["CMD", ...argv] or ["CMD-SHELL", command]. */
  test: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

export interface HealthcheckInstruction extends InstructionBase {
  kind: "healthcheck";
  health: HealthcheckSpec;
}

export interface ShellInstruction extends InstructionBase {
  kind: "shell";
  shell: string[];
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ExposeInstruction
  | EnvInstruction
  | AddInstruction
  | CopyInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | ArgInstruction
  | OnbuildInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | ShellInstruction;

export type InstructionKind = Instruction["kind"];

/** Every instruction but FROM: what a stage holds. */
export type StageInstruction = Exclude<Instruction, FromInstruction>;

export const INSTRUCTION_KINDS: readonly InstructionKind[] = [
  "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label", "maintainer",
  "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
];

const NO_FLAGS: FlagSpec = {};
const RUN_FLAGS: FlagSpec = { mount: "strings", network: "string", security: "string", device: "strings" };
const ADD_FLAGS: FlagSpec = {
  chown: "string", chmod: "string", link: "bool", "keep-git-dir": "bool", checksum: "string", unpack: "bool",
  exclude: "strings",
};
const COPY_FLAGS: FlagSpec = {
  chown: "string", from: "string", chmod: "string", link: "bool", exclude: "strings", parents: "bool",
};
const HEALTHCHECK_FLAGS: FlagSpec = {
  interval: "string", timeout: "string", "start-period": "string", "start-interval": "string", retries: "string",
};

const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

export interface ParseInstructionOptions {
  /** File name used in error messages; "Dockerfile" by default. */
  file?: string;
}

/** The keyword as written (BuildKit reports unknown instructions in the user's casing). */
function writtenKeyword(node: InstructionNode): string {
  const word = /^\s*(\S+)/.exec(node.original)?.[1];
  return word !== undefined && word.toLowerCase() === node.keyword ? word : node.keyword;
}

/**
 * Turns one parser node into a typed instruction. Throws DockerfileError (`file:LINE: message`)
 * with BuildKit's wording for everything BuildKit's instruction layer rejects.
 */
export function parseInstruction(node: InstructionNode, options: ParseInstructionOptions = {}): Instruction {
  try {
    return build(node);
  } catch (err) {
    if (err instanceof InstructionError) throw new DockerfileError(options.file ?? "Dockerfile", node.range, err.message);
    throw err;
  }
}

function base(node: InstructionNode): InstructionBase {
  return { range: node.range, original: node.original.trim(), comments: node.comments };
}

const fail = (message: string): InstructionError => new InstructionError(message);
const atLeastOne = (name: string): InstructionError => fail(`${name} requires at least one argument`);
const exactlyOne = (name: string): InstructionError => fail(`${name} requires exactly one argument`);

function build(node: InstructionNode): Instruction {
  const flags = (spec: FlagSpec): ParsedFlags => parseFlags(node.flags, spec);
  const args = node.args;
  switch (node.keyword) {
    case "env":
      flags(NO_FLAGS);
      return { kind: "env", ...base(node), env: parseKeyValues(args, "ENV") };
    case "label":
      flags(NO_FLAGS);
      return { kind: "label", ...base(node), labels: parseKeyValues(args, "LABEL") };
    case "maintainer":
      if (args.length !== 1) throw exactlyOne("MAINTAINER");
      flags(NO_FLAGS);
      return { kind: "maintainer", ...base(node), maintainer: args[0] as string };
    case "add":
      return parseAdd(node);
    case "copy":
      return parseCopy(node);
    case "from":
      return parseFrom(node);
    case "onbuild":
      return parseOnbuild(node);
    case "workdir":
      if (args.length !== 1) throw exactlyOne("WORKDIR");
      flags(NO_FLAGS);
      return { kind: "workdir", ...base(node), path: args[0] as string };
    case "run":
      return parseRun(node);
    case "cmd":
      flags(NO_FLAGS);
      return { kind: "cmd", ...base(node), ...shellDependent(node) };
    case "entrypoint": {
      flags(NO_FLAGS);
      const cmd = shellDependent(node);
      return { kind: "entrypoint", ...base(node), ...cmd, command: cmd.command.length === 0 ? null : cmd.command };
    }
    case "healthcheck":
      return parseHealthcheck(node);
    case "expose":
      if (args.length === 0) throw atLeastOne("EXPOSE");
      flags(NO_FLAGS);
      // Sorted by byte order like Go's slices.Sort (ports are ASCII).
      return { kind: "expose", ...base(node), ports: [...args].sort() };
    case "user":
      if (args.length !== 1) throw exactlyOne("USER");
      flags(NO_FLAGS);
      return { kind: "user", ...base(node), user: args[0] as string };
    case "volume": {
      if (args.length === 0) throw atLeastOne("VOLUME");
      flags(NO_FLAGS);
      const volumes = args.map((v) => v.trim());
      if (volumes.includes("")) throw fail("VOLUME specified can not be an empty string");
      return { kind: "volume", ...base(node), volumes };
    }
    case "stopsignal":
      // BuildKit never parses STOPSIGNAL's flags: they are silently ignored.
      if (args.length !== 1) throw exactlyOne("STOPSIGNAL");
      return { kind: "stopsignal", ...base(node), signal: args[0] as string };
    case "arg":
      return parseArg(node);
    case "shell":
      return parseShell(node);
    default:
      throw fail(
        withSuggestion(
          `unknown instruction: ${writtenKeyword(node)}`,
          writtenKeyword(node),
          INSTRUCTION_KINDS.map((k) => k.toUpperCase()),
          false,
        ),
      );
  }
}

function parseKeyValues(args: readonly string[], name: string): KeyValuePair[] {
  if (args.length === 0) throw atLeastOne(name);
  if (args.length % 3 !== 0) throw fail(`Bad input to ${name}, too many arguments`);
  const pairs: KeyValuePair[] = [];
  for (let i = 0; i < args.length; i += 3) {
    const key = args[i] as string;
    if (key === "") throw fail(`${name} names can not be blank`);
    pairs.push({ key, value: args[i + 1] as string, noDelim: args[i + 2] === "" });
  }
  return pairs;
}

function parseFrom(node: InstructionNode): FromInstruction {
  const args = node.args;
  let stageName: string | undefined;
  if (args.length === 3 && (args[1] as string).toLowerCase() === "as") {
    stageName = (args[2] as string).toLowerCase();
    if (!VALID_STAGE_NAME.test(stageName)) {
      throw fail(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
    }
  } else if (args.length !== 1) {
    throw fail("FROM requires either one or three arguments");
  }
  const flags = parseFlags(node.flags, { platform: "string" });
  const from: FromInstruction = { kind: "from", ...base(node), image: args[0] as string };
  const platform = flags.strings.get("platform");
  if (platform !== undefined && platform !== "") from.platform = platform;
  if (stageName !== undefined) from.stageName = stageName;
  return from;
}

function shellDependent(node: InstructionNode): ShellDependentCommand {
  const files = node.heredocs.map((h: Heredoc) => ({ name: h.name, data: h.content, chomp: h.chomp }));
  const command = node.json ? [...node.args] : node.args.length === 0 ? [] : [node.args.join(" ")];
  return { command, prependShell: !node.json, files };
}

function parseRun(node: InstructionNode): RunInstruction {
  const flags = parseFlags(node.flags, RUN_FLAGS);
  // Checks run in BuildKit's order (its RUN post-parse hooks: device, mount, network, security).
  const devices = (flags.lists.get("device") ?? []).map(parseRunDevice);
  const mountSpecs = flags.lists.get("mount") ?? [];
  for (const spec of mountSpecs) checkMountFromLiteral(spec);
  const network = flags.strings.get("network") ?? "default";
  if (network !== "default" && network !== "none" && network !== "host") {
    throw fail(`invalid network mode ${JSON.stringify(network)}`);
  }
  const security = flags.strings.get("security") ?? "sandbox";
  if (security !== "sandbox" && security !== "insecure") {
    throw fail(`security ${JSON.stringify(security)} is not valid`);
  }
  // BuildKit validates mount options only at dispatch, after expansion; literal ones are checked
  // here already so that mistakes surface before anything runs.
  const mounts = mountSpecs.some((s) => s.includes("$")) ? undefined : mountSpecs.map((s) => parseRunMount(s));
  return {
    kind: "run",
    ...base(node),
    ...shellDependent(node),
    mountSpecs,
    mounts,
    network,
    security,
    devices,
    flagsUsed: flags.used,
  };
}

function sourcesAndDest(node: InstructionNode, name: string): Pick<SourcesAndDest, "sources" | "contents" | "dest"> {
  const args = node.args;
  const dest = args[args.length - 1] as string;
  if (parseHeredocWord(dest)) throw fail(`${name} cannot accept a heredoc as a destination`);
  const sources: string[] = [];
  const contents: SourceContent[] = [];
  for (const src of args.slice(0, -1)) {
    const word = parseHeredocWord(src);
    if (!word) {
      sources.push(src);
      continue;
    }
    const heredoc = node.heredocs.find((h) => h.name === word.name);
    let data = heredoc?.content ?? "";
    // Tabs are stripped here (BuildKit applies `<<-` when building the source list); idempotent if
    // the parser already stripped them.
    if (word.chomp) data = data.replace(/^\t+/gm, "");
    contents.push({ path: word.name, data, expand: word.expand });
  }
  return { sources, contents, dest };
}

function optional<T>(value: T | undefined): T | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function parseAdd(node: InstructionNode): AddInstruction {
  if (node.args.length < 2) {
    throw fail("ADD requires at least two arguments, but only one was provided. Destination could not be determined");
  }
  const flags = parseFlags(node.flags, ADD_FLAGS);
  const add: AddInstruction = {
    kind: "add",
    ...base(node),
    ...sourcesAndDest(node, "ADD"),
    link: flags.bools.get("link") ?? false,
    excludes: flags.lists.get("exclude") ?? [],
  };
  const chown = optional(flags.strings.get("chown"));
  const chmod = optional(flags.strings.get("chmod"));
  const checksum = optional(flags.strings.get("checksum"));
  if (chown !== undefined) add.chown = chown;
  if (chmod !== undefined) add.chmod = chmod;
  if (checksum !== undefined) add.checksum = checksum;
  if (flags.bools.has("keep-git-dir")) add.keepGitDir = flags.bools.get("keep-git-dir") as boolean;
  if (flags.bools.has("unpack")) add.unpack = flags.bools.get("unpack") as boolean;
  return add;
}

function parseCopy(node: InstructionNode): CopyInstruction {
  if (node.args.length < 2) {
    throw fail("COPY requires at least two arguments, but only one was provided. Destination could not be determined");
  }
  const flags = parseFlags(node.flags, COPY_FLAGS);
  const copy: CopyInstruction = {
    kind: "copy",
    ...base(node),
    ...sourcesAndDest(node, "COPY"),
    link: flags.bools.get("link") ?? false,
    parents: flags.bools.get("parents") ?? false,
    excludes: flags.lists.get("exclude") ?? [],
  };
  const chown = optional(flags.strings.get("chown"));
  const chmod = optional(flags.strings.get("chmod"));
  const from = optional(flags.strings.get("from"));
  if (chown !== undefined) copy.chown = chown;
  if (chmod !== undefined) copy.chmod = chmod;
  if (from !== undefined) copy.from = from;
  return copy;
}

function parseOnbuild(node: InstructionNode): OnbuildInstruction {
  const trigger = node.child?.keyword ?? node.args[0];
  if (trigger === undefined) throw atLeastOne("ONBUILD");
  parseFlags(node.flags, NO_FLAGS);
  const upper = trigger.trim().toUpperCase();
  if (upper === "ONBUILD") throw fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (upper === "MAINTAINER" || upper === "FROM") throw fail(`${upper} isn't allowed as an ONBUILD trigger`);
  let expression = node.original.replace(/^\s*ONBUILD\s*/i, "");
  const heredocs = node.child?.heredocs.length ? node.child.heredocs : node.heredocs;
  for (const h of heredocs) expression += `\n${h.content}${h.name}`;
  const onbuild: OnbuildInstruction = { kind: "onbuild", ...base(node), expression };
  if (node.child) {
    try {
      // BuildKit's parser attaches a trigger's heredocs to the ONBUILD node itself.
      onbuild.child = build({ ...node.child, heredocs });
    } catch (err) {
      if (!(err instanceof InstructionError)) throw err;
      onbuild.childError = err.message;
    }
  }
  return onbuild;
}

/** A HEALTHCHECK duration flag: 0 when absent or zero, else at least 1ms. */
function healthDuration(flags: ParsedFlags, name: string): number {
  const text = flags.strings.get(name) ?? "";
  if (text === "") return 0;
  const ns = parseGoDuration(text);
  if (ns === 0n) return 0;
  if (ns < ONE_MILLISECOND_NS) throw fail(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
  return Number(ns);
}

function parseHealthcheck(node: InstructionNode): HealthcheckInstruction {
  if (node.args.length === 0) throw atLeastOne("HEALTHCHECK");
  const type = (node.args[0] as string).toUpperCase();
  const rest = node.args.slice(1);
  const health: HealthcheckSpec = { test: [], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (type === "NONE") {
    // Flags are not even looked at for NONE, as in BuildKit.
    if (rest.length !== 0) throw fail("HEALTHCHECK NONE takes no arguments");
    health.test = [type];
    return { kind: "healthcheck", ...base(node), health };
  }
  const flags = parseFlags(node.flags, HEALTHCHECK_FLAGS);
  if (type !== "CMD") throw fail(`Unknown type ${JSON.stringify(type)} in HEALTHCHECK (try CMD)`);
  const command = node.json ? rest : rest.length === 0 ? [] : [rest.join(" ")];
  if (command.length === 0) throw fail("Missing command after HEALTHCHECK CMD");
  health.test = [node.json ? "CMD" : "CMD-SHELL", ...command];
  health.interval = healthDuration(flags, "interval");
  health.timeout = healthDuration(flags, "timeout");
  health.startPeriod = healthDuration(flags, "start-period");
  health.startInterval = healthDuration(flags, "start-interval");
  const retries = flags.strings.get("retries") ?? "";
  if (retries !== "") health.retries = parseRetries(retries);
  return { kind: "healthcheck", ...base(node), health };
}

/** strconv.ParseInt(value, 10, 32) plus BuildKit's negative check. */
function parseRetries(value: string): number {
  if (!/^[+-]?[0-9]+$/.test(value)) throw fail(`strconv.ParseInt: parsing ${JSON.stringify(value)}: invalid syntax`);
  const n = Number.parseInt(value, 10);
  if (n > 2147483647 || n < -2147483648) {
    throw fail(`strconv.ParseInt: parsing ${JSON.stringify(value)}: value out of range`);
  }
  if (n < 0) throw fail(`--retries cannot be negative (${n})`);
  return n;
}

function parseArg(node: InstructionNode): ArgInstruction {
  if (node.args.length < 1) throw atLeastOne("ARG");
  // BuildKit does not parse ARG's flags: any are ignored.
  const args = node.args.map((word): ArgDefinition => {
    const eq = word.indexOf("=");
    if (eq === -1) return { key: word };
    if (eq === 0) throw fail("ARG names can not be blank");
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
  return { kind: "arg", ...base(node), args };
}

function parseShell(node: InstructionNode): ShellInstruction {
  parseFlags(node.flags, NO_FLAGS);
  if (node.args.length === 0) throw atLeastOne("SHELL");
  if (!node.json) throw fail(`SHELL requires the arguments to be in JSON form`);
  return { kind: "shell", ...base(node), shell: [...node.args] };
}

/** Types every node of a parsed Dockerfile, in order (no stage grouping; see stages.ts). */
export function parseInstructions(ast: DockerfileAst, options: ParseInstructionOptions = {}): Instruction[] {
  const file = options.file ?? (ast.file || "Dockerfile");
  return ast.nodes.map((node) => parseInstruction(node, { file }));
}
