// `RUN --mount=...` and `RUN --device=...` values as typed objects, with BuildKit's keys, aliases,
// defaults and validation (frontend/dockerfile/instructions/commands_runmount.go).
import { csvFields } from "./instruction-csv.js";
import { InstructionError } from "./instruction-error.js";
import { withSuggestion } from "./suggest.js";

export const MOUNT_TYPES = ["bind", "cache", "tmpfs", "secret", "ssh"] as const;
export type MountType = (typeof MOUNT_TYPES)[number];

export const CACHE_SHARING_MODES = ["shared", "private", "locked"] as const;
export type CacheSharing = (typeof CACHE_SHARING_MODES)[number];

export interface RunMount {
  type: MountType;
  /** Stage name or image to mount from (bind, cache); undefined means the build context (or an empty dir for cache). */
  from?: string;
  source?: string;
  target?: string;
  /** BuildKit's default: read-only for bind, secret and ssh; read-write for cache and tmpfs. */
  readOnly: boolean;
  /** tmpfs size limit in bytes; 0 means unlimited. */
  sizeLimit: number;
  /** `id=`: the cache id (cache), secret id (secret) or agent id (ssh). */
  id?: string;
  /** Cache sharing; undefined means BuildKit's default, "shared". */
  sharing?: CacheSharing;
  /** secret and ssh only: fail when the secret/agent is not provided. */
  required: boolean;
  /** secret only: also (or instead) expose the secret as this environment variable. */
  env?: string;
  /** Octal `mode=`, `uid=`, `gid=` (cache, secret, ssh only). */
  mode?: number;
  uid?: number;
  gid?: number;
}

const MOUNT_KEYS = [
  "type", "from", "source", "target", "readonly", "id", "sharing", "required", "size", "mode", "uid", "gid",
  "src", "dst", "destination", "ro", "rw", "readwrite", "env",
];

/** Expands one option value; the identity when no environment applies. */
export type ValueExpander = (value: string) => string;

const identity: ValueExpander = (value) => value;

/** Go's strconv.ParseBool. */
function parseGoBool(value: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  return undefined;
}

/** strconv.ParseUint(value, base, 32). */
function parseUint32(value: string, base: 8 | 10): number | undefined {
  // Go also accepts underscores only with base 0, and no sign or prefix here.
  const digits = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!digits.test(value)) return undefined;
  const n = parseInt(value, base);
  return n <= 0xffffffff ? n : undefined;
}

/** go-units RAMInBytes: "64m", "1.5GiB", "1024" with binary multipliers. */
export function parseRamBytes(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  if (!m) return undefined;
  const size = Number.parseFloat(m[1] as string);
  if (!Number.isFinite(size)) return undefined;
  const exponent = m[2] ? "kmgtp".indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.trunc(size * 1024 ** exponent);
}

/**
 * Parses one `--mount` value. `expand` is applied to every `key=value` value first, as BuildKit
 * does when it dispatches the RUN with the stage environment.
 */
export function parseRunMount(spec: string, expand: ValueExpander = identity): RunMount {
  const mount: RunMount = { type: "bind", readOnly: false, sizeLimit: 0, required: false };
  let readOnlyAuto = true;
  for (const field of csvFields(spec, "mounts")) {
    const eq = field.indexOf("=");
    const key = (eq === -1 ? field : field.slice(0, eq)).toLowerCase();
    if (eq === -1) {
      switch (key) {
        case "readonly":
        case "ro":
          mount.readOnly = true;
          readOnlyAuto = false;
          continue;
        case "readwrite":
        case "rw":
          mount.readOnly = false;
          readOnlyAuto = false;
          continue;
        case "required":
          if (mount.type !== "secret" && mount.type !== "ssh") {
            throw new InstructionError(`unexpected key '${key}' for mount type '${mount.type}'`);
          }
          mount.required = true;
          continue;
        default:
          throw new InstructionError(`invalid field '${field}' must be a key=value pair`);
      }
    }
    const value = expand(field.slice(eq + 1));
    const bool = (): boolean => {
      const b = parseGoBool(value);
      if (b === undefined) throw new InstructionError(`invalid value for ${key}: ${value}`);
      return b;
    };
    switch (key) {
      case "type": {
        const type = value.toLowerCase();
        if (!(MOUNT_TYPES as readonly string[]).includes(type)) {
          throw new InstructionError(withSuggestion(`unsupported mount type "${value}"`, value, MOUNT_TYPES, true));
        }
        mount.type = type as MountType;
        break;
      }
      case "from":
        mount.from = value;
        break;
      case "source":
      case "src":
        mount.source = value;
        break;
      case "target":
      case "dst":
      case "destination":
        mount.target = value;
        break;
      case "readonly":
      case "ro":
        mount.readOnly = bool();
        readOnlyAuto = false;
        break;
      case "readwrite":
      case "rw":
        mount.readOnly = !bool();
        readOnlyAuto = false;
        break;
      case "required":
        if (mount.type !== "secret" && mount.type !== "ssh") {
          throw new InstructionError(`unexpected key '${key}' for mount type '${mount.type}'`);
        }
        mount.required = bool();
        break;
      case "size": {
        if (mount.type !== "tmpfs") throw new InstructionError(`unexpected key '${key}' for mount type '${mount.type}'`);
        const size = parseRamBytes(value);
        if (size === undefined) throw new InstructionError(`invalid value for ${key}: ${value}`);
        mount.sizeLimit = size;
        break;
      }
      case "id":
        mount.id = value;
        break;
      case "sharing": {
        const sharing = value.toLowerCase();
        if (!(CACHE_SHARING_MODES as readonly string[]).includes(sharing)) {
          throw new InstructionError(
            withSuggestion(`unsupported sharing value "${value}"`, value, CACHE_SHARING_MODES, true),
          );
        }
        mount.sharing = sharing as CacheSharing;
        break;
      }
      case "mode":
        mount.mode = parseUint32(value, 8);
        if (mount.mode === undefined) throw new InstructionError(`invalid value ${value} for mode`);
        break;
      case "uid":
        mount.uid = parseUint32(value, 10);
        if (mount.uid === undefined) throw new InstructionError(`invalid value ${value} for uid`);
        break;
      case "gid":
        mount.gid = parseUint32(value, 10);
        if (mount.gid === undefined) throw new InstructionError(`invalid value ${value} for gid`);
        break;
      case "env":
        mount.env = value;
        break;
      default:
        throw new InstructionError(withSuggestion(`unexpected key '${key}' in '${field}'`, key, MOUNT_KEYS, true));
    }
  }
  validateMount(mount, readOnlyAuto);
  return mount;
}

function validateMount(mount: RunMount, readOnlyAuto: boolean): void {
  const fileInfoAllowed = mount.type === "secret" || mount.type === "ssh" || mount.type === "cache";
  if (!fileInfoAllowed) {
    for (const key of ["mode", "uid", "gid"] as const) {
      if (mount[key] !== undefined) throw new InstructionError(`${key} not allowed for "${mount.type}" type mounts`);
    }
  }
  if (readOnlyAuto) mount.readOnly = !(mount.type === "cache" || mount.type === "tmpfs");
  if (mount.type === "secret") {
    if (mount.from) throw new InstructionError("secret mount should not have a from");
    if (mount.sharing) throw new InstructionError("secret mount should not define sharing");
    if (!mount.source && !mount.target && !mount.id) {
      throw new InstructionError("invalid secret mount. one of source, target required");
    }
    if (mount.source && mount.id) throw new InstructionError("both source and id can't be set");
  }
  if (mount.sharing && mount.type !== "cache") {
    throw new InstructionError(`invalid cache sharing set for ${mount.type} mount`);
  }
}

/**
 * The check BuildKit makes before any expansion: `from=` names a stage or image and cannot use
 * variables (a lone trailing `$` is literal).
 */
export function checkMountFromLiteral(spec: string): void {
  for (const field of csvFields(spec, "mounts")) {
    const eq = field.indexOf("=");
    if (eq === -1 || field.slice(0, eq).toLowerCase() !== "from") continue;
    const value = field.slice(eq + 1);
    const dollar = value.indexOf("$");
    if (dollar !== -1 && dollar !== value.length - 1) {
      throw new InstructionError("'from' doesn't support variable expansion, define alias stage instead");
    }
  }
}

export interface RunDevice {
  /** CDI device name, e.g. "vendor.com/gpu=all". */
  name: string;
  required: boolean;
}

/** Parses one `RUN --device=` value (`name[,required[=bool]]` or `name=...`). */
export function parseRunDevice(spec: string): RunDevice {
  const device: RunDevice = { name: "", required: false };
  for (const field of csvFields(spec, "devices")) {
    const eq = field.indexOf("=");
    const key = (eq === -1 ? field : field.slice(0, eq)).toLowerCase();
    const value = field.slice(eq + 1);
    if (eq === -1) {
      if (key === "required") device.required = true;
      else if (device.name === "") device.name = field;
      else throw new InstructionError(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    if (key === "name") {
      if (device.name !== "") throw new InstructionError(`device name already set to ${device.name}`);
      device.name = value;
    } else if (key === "required") {
      const b = parseGoBool(value);
      if (b === undefined) throw new InstructionError(`invalid value for ${key}: ${value}`);
      device.required = b;
    } else if (device.name === "") {
      // A CDI name such as "vendor.com/class=all" contains "=" itself.
      device.name = field;
    } else {
      throw new InstructionError(withSuggestion(`unexpected key '${key}' in '${field}'`, key, ["name", "required"], true));
    }
  }
  return device;
}
