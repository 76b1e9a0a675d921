// The defaults BuildKit fills in when it dispatches a RUN mount (dockerfile2llb/convert_runmount.go,
// convert_secrets.go, convert_ssh.go), so the engine gets complete mount descriptions.
import { posix } from "node:path";
import { InstructionError } from "./instruction-error.js";
import type { CacheSharing, RunMount } from "./instruction-mounts.js";

interface FileOwnership {
  uid: number;
  gid: number;
  mode: number;
}

export type ResolvedMount =
  | { type: "bind"; target: string; from?: string; source: string; readOnly: boolean }
  | {
      type: "cache";
      target: string;
      /** Cache id without BuildKit's namespace prefix. */
      id: string;
      sharing: CacheSharing;
      /** undefined: an empty directory; else a stage or image whose `source` seeds the cache. */
      from?: string;
      source: string;
      readOnly: boolean;
      /** Ownership of the cache directory when created (BuildKit: 0:0 0755 unless given). */
      ownership: FileOwnership;
    }
  | { type: "tmpfs"; target: string; sizeLimit: number }
  | {
      type: "secret";
      id: string;
      /** File path; undefined when the secret is only exposed through `env`. */
      target?: string;
      env?: string;
      required: boolean;
      /** Set only when uid, gid or mode was given (mode then defaults to 0400). */
      ownership?: FileOwnership;
    }
  | {
      type: "ssh";
      id: string;
      /** Socket path; undefined means BuildKit's default (/run/buildkit/ssh_agent.N). */
      target?: string;
      required: boolean;
      /** Set only when uid, gid or mode was given (mode then defaults to 0600). */
      ownership?: FileOwnership;
    };

/** Go's path.Clean. */
function goClean(p: string): string {
  if (p === "") return ".";
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** A relative bind/cache/tmpfs target is joined to the working directory; "/" is refused. */
function absoluteTarget(target: string, workdir: string): string {
  const result = posix.isAbsolute(goClean(target)) ? target : goClean(posix.join("/", workdir, target));
  if (result === "/") throw new InstructionError(`invalid mount target "${result}"`);
  return result;
}

function ownership(m: RunMount, defaultMode: number): FileOwnership | undefined {
  if (m.uid === undefined && m.gid === undefined && m.mode === undefined) return undefined;
  return { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? defaultMode };
}

/** Applies BuildKit's dispatch-time defaults to a parsed (and expanded) mount. */
export function resolveRunMount(m: RunMount, workdir = "/"): ResolvedMount {
  switch (m.type) {
    case "secret": {
      let id = m.source || m.id || "";
      if (id === "") {
        if (!m.target) throw new InstructionError("one of source, target required");
        id = posix.basename(m.target);
      }
      const out: ResolvedMount = { type: "secret", id, required: m.required };
      if (m.env === undefined) out.target = m.target || `/run/secrets/${posix.basename(id)}`;
      else {
        out.env = m.env;
        if (m.target) out.target = m.target;
      }
      const own = ownership(m, 0o400);
      if (own) out.ownership = own;
      return out;
    }
    case "ssh": {
      if (m.source) throw new InstructionError("ssh does not support source");
      const out: ResolvedMount = { type: "ssh", id: m.id || "default", required: m.required };
      if (m.target) out.target = m.target;
      const own = ownership(m, 0o600);
      if (own) out.ownership = own;
      return out;
    }
    case "tmpfs":
      return { type: "tmpfs", target: absoluteTarget(m.target ?? "", workdir), sizeLimit: m.sizeLimit };
    case "cache": {
      const target = absoluteTarget(m.target ?? "", workdir);
      const out: ResolvedMount = {
        type: "cache",
        target,
        // BuildKit cleans the target as written (before it is made absolute).
        id: m.id || goClean(m.target ?? ""),
        sharing: m.sharing ?? "shared",
        source: goClean(posix.join("/", m.source ?? "")),
        readOnly: m.readOnly,
        ownership: ownership(m, 0o755) ?? { uid: 0, gid: 0, mode: 0o755 },
      };
      if (m.from) out.from = m.from;
      return out;
    }
    case "bind": {
      const out: ResolvedMount = {
        type: "bind",
        target: absoluteTarget(m.target ?? "", workdir),
        source: goClean(posix.join("/", m.source ?? "")),
        readOnly: m.readOnly,
      };
      if (m.from) out.from = m.from;
      return out;
    }
  }
}
