import { execFile } from "node:child_process";

/** Runs a helper binary (mknod, setfattr) with arguments — never through a shell. */
export function runTool(cmd: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...(signal ? { signal } : {}), encoding: "utf8" }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
      reject(new Error(missing ? `${cmd} is not installed` : `${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`, { cause: err }));
    });
  });
}

/**
 * Sets an extended attribute without following a final symlink. Node has no xattr API, so this uses
 * setfattr from the Debian "attr" package; values are passed hex-encoded so binary data survives.
 */
export function setXattr(hostPath: string, name: string, value: Buffer, signal?: AbortSignal): Promise<void> {
  const args = ["-h", "-n", name];
  if (value.length > 0) args.push("-v", `0x${value.toString("hex")}`);
  args.push(hostPath);
  return runTool("setfattr", args, signal);
}

/** Creates a device node or fifo (Node has no mknod binding). */
export function makeNode(
  hostPath: string,
  kind: "char" | "block" | "fifo",
  major = 0,
  minor = 0,
  signal?: AbortSignal,
): Promise<void> {
  const args = kind === "fifo" ? [hostPath, "p"] : [hostPath, kind === "char" ? "c" : "b", String(major), String(minor)];
  return runTool("mknod", args, signal);
}
