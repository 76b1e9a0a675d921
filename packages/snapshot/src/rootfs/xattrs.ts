import { spawn } from "node:child_process";
import { DiffError } from "./errors.js";

/** xattrs per absolute path; paths without any are absent. */
export type XattrMap = Map<string, Map<string, Buffer>>;

/**
 * Reads extended attributes with getfattr(1) (package "attr"): Node has no xattr API, and one process per
 * tree (or per batch of paths) keeps the cost independent of how many files carry attributes.
 * `recursive` walks each root physically (no symlink following).
 */
export async function readXattrs(
  paths: string[],
  opts: { recursive?: boolean; signal?: AbortSignal } = {},
): Promise<XattrMap> {
  const out: XattrMap = new Map();
  const batch = 256;
  for (let i = 0; i < paths.length; i += batch) {
    const args = ["--absolute-names", "-h", "-d", "-m", "-", "-e", "base64"];
    if (opts.recursive) args.push("-R", "-P");
    args.push("--", ...paths.slice(i, i + batch));
    parseGetfattr(await runGetfattr(args, opts.signal), out);
  }
  return out;
}

function runGetfattr(args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("getfattr", args, { stdio: ["ignore", "pipe", "pipe"], signal, env: { LC_ALL: "C" } });
    const chunks: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("error", (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      reject(
        code === "ENOENT"
          ? new DiffError("getfattr not found: install the 'attr' package (needed to read overlay opaque markers and xattrs)", { cause: e })
          : e,
      );
    });
    child.on("close", (code) => {
      // Exit 1 with "No such file" happens when a path vanished; anything else is a real failure.
      if (code !== 0 && !/No such file/.test(err)) {
        reject(new DiffError(`getfattr failed (${code}): ${err.trim()}`));
        return;
      }
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
  });
}

/** getfattr escapes bytes in names as \ooo (and "\" as "\\"); output was read as latin1 = raw bytes. */
function unescapeName(s: string): string {
  const bytes = Buffer.from(
    s.replace(/\\(\\|[0-7]{3})/g, (_m, g: string) => (g === "\\" ? "\\" : String.fromCharCode(parseInt(g, 8)))),
    "latin1",
  );
  return bytes.toString("utf8");
}

export function parseGetfattr(text: string, out: XattrMap): void {
  let current: Map<string, Buffer> | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("# file: ")) {
      const file = unescapeName(line.slice(8));
      current = out.get(file) ?? new Map();
      out.set(file, current);
    } else if (line !== "" && current) {
      const eq = line.indexOf("=");
      const name = unescapeName(eq < 0 ? line : line.slice(0, eq));
      current.set(name, eq < 0 ? Buffer.alloc(0) : decodeValue(line.slice(eq + 1)));
    }
  }
}

function decodeValue(v: string): Buffer {
  if (v.startsWith("0s")) return Buffer.from(v.slice(2), "base64");
  if (v.startsWith("0x")) return Buffer.from(v.slice(2), "hex");
  if (v.startsWith('"') && v.endsWith('"')) return Buffer.from(unescapeName(v.slice(1, -1)), "utf8");
  return Buffer.from(v, "latin1");
}

/** Overlay's own bookkeeping and host security labels never belong in a layer. */
export function isLayerXattr(name: string): boolean {
  return !name.startsWith("trusted.overlay.") && !name.startsWith("user.overlay.") && name !== "security.selinux";
}

export function layerXattrs(all: Map<string, Buffer> | undefined): Record<string, Buffer> | undefined {
  if (!all) return undefined;
  let rec: Record<string, Buffer> | undefined;
  for (const [k, v] of all) {
    if (!isLayerXattr(k)) continue;
    (rec ??= {})[k] = v;
  }
  return rec;
}
