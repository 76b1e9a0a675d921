// Metadata instructions: each edits the config and adds a history entry, exactly as BuildKit words it.
import type { Instruction } from "../../dockerfile/instructions.js";
import { goQuote } from "../../dockerfile/shell-chars.js";
import type { HealthConfig, ImageConfig } from "../../image/oci.js";
import {
  addExposedPorts,
  addOnBuild,
  addVolumes,
  parsePorts,
  setAuthor,
  setCmd,
  setEntrypoint,
  setEnv,
  setHealthcheck,
  setLabel,
  setShell,
  setStopSignal,
  setUser,
  shellOf,
} from "../image-config.js";

/** Go's `%q` of a []string: `["a" "b"]`. */
export function goQuoteList(list: readonly string[]): string {
  return `[${list.map(goQuote).join(" ")}]`;
}

/** Go's `%v` of a []string: `[a b]`. */
export function goList(list: readonly string[]): string {
  return `[${list.join(" ")}]`;
}

/** Go's time.Duration String() for nanoseconds: "5s", "1m30s", "0s", "1.5s", "300ms". */
export function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  const neg = ns < 0;
  let n = Math.abs(ns);
  let out: string;
  if (n < 1e3) out = `${n}ns`;
  else if (n < 1e6) out = `${trimZeros(n / 1e3)}µs`;
  else if (n < 1e9) out = `${trimZeros(n / 1e6)}ms`;
  else {
    const h = Math.floor(n / 3.6e12);
    n -= h * 3.6e12;
    const m = Math.floor(n / 6e10);
    n -= m * 6e10;
    const s = trimZeros(n / 1e9);
    out = h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
  }
  return neg ? `-${out}` : out;
}

function trimZeros(x: number): string {
  return String(Number(x.toFixed(9)));
}

export interface StageFlags {
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

/**
 * Applies an already-expanded metadata instruction to `config`. Returns the history text ("" when
 * BuildKit writes none), or undefined when the instruction is not a metadata instruction.
 */
export function applyMetadata(instr: Instruction, config: ImageConfig, flags: StageFlags): string | undefined {
  switch (instr.kind) {
    case "env": {
      for (const e of instr.env) setEnv(config, e.key, e.value);
      return ["ENV", ...instr.env.map((e) => `${e.key}=${e.value}`)].join(" ");
    }
    case "label": {
      config.config ??= {};
      config.config.Labels ??= {};
      for (const l of instr.labels) setLabel(config, l.key, l.value);
      return ["LABEL", ...instr.labels.map((l) => `${l.key}=${l.value}`)].join(" ");
    }
    case "cmd": {
      const args = instr.prependShell ? [...shellOf(config), ...instr.command] : instr.command;
      setCmd(config, args);
      config.config!.ArgsEscaped = true;
      flags.cmdSet = true;
      return `CMD ${goQuoteList(args)}`;
    }
    case "entrypoint": {
      const args = instr.command === null ? null : instr.prependShell ? [...shellOf(config), ...instr.command] : instr.command;
      setEntrypoint(config, args, flags.cmdSet);
      return `ENTRYPOINT ${args === null ? "[]" : goQuoteList(args)}`;
    }
    case "expose": {
      const ports = parsePorts(instr.ports);
      addExposedPorts(config, ports);
      return `EXPOSE ${goList(ports)}`;
    }
    case "volume": {
      addVolumes(config, instr.volumes);
      return `VOLUME ${goList(instr.volumes)}`;
    }
    case "user":
      setUser(config, instr.user);
      return `USER ${instr.user}`;
    case "stopsignal":
      setStopSignal(config, instr.signal);
      return `STOPSIGNAL ${instr.signal}`;
    case "shell":
      setShell(config, instr.shell);
      return `SHELL ${goList(instr.shell)}`;
    case "maintainer":
      setAuthor(config, instr.maintainer);
      return `MAINTAINER ${instr.maintainer}`;
    case "onbuild":
      // BuildKit records no history entry for ONBUILD.
      addOnBuild(config, instr.expression);
      return "";
    case "healthcheck": {
      const h = instr.health;
      // Go omits zero durations and counts from the JSON (omitempty).
      const health: HealthConfig = { Test: h.test };
      if (h.interval) health.Interval = h.interval;
      if (h.timeout) health.Timeout = h.timeout;
      if (h.startPeriod) health.StartPeriod = h.startPeriod;
      if (h.startInterval) health.StartInterval = h.startInterval;
      if (h.retries) health.Retries = h.retries;
      setHealthcheck(config, health);
      return `HEALTHCHECK {Test:${goList(h.test)} Interval:${goDuration(h.interval)} Timeout:${goDuration(h.timeout)} StartPeriod:${goDuration(h.startPeriod)} StartInterval:${goDuration(h.startInterval)} Retries:${h.retries}}`;
    }
    default:
      return undefined;
  }
}
