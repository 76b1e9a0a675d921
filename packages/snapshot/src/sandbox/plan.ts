import path from "node:path";
import { SandboxSetupError, SandboxUnsupportedError } from "./errors.js";
import type { SandboxMount, SandboxSpec } from "./types.js";

/** Where the per-run generated files live on the host. */
export interface RunFiles {
  hosts: string;
  hostname: string;
  resolvConf: string;
}

export interface PlanOptions {
  spec: SandboxSpec;
  hostname: string;
  files: RunFiles;
  /** Overlay mount data + cwd when the overlay is mounted inside the namespace. */
  overlay?: { data: string; cwd: string };
  /** Whether the launcher runs in a user namespace (no devpts gid=5: it is unmapped there). */
  userns: boolean;
  /** host path of a mount source → whether it is a directory */
  sourceIsDir: (m: Extract<SandboxMount, { type: "bind" }>) => boolean;
}

// mount(2) flags (linux/mount.h); the launcher calls the syscall directly.
const MS_RDONLY = 1;
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const MS_REMOUNT = 32;
const MS_BIND = 4096;
const MS_REC = 16384;
const MS_STRICTATIME = 1 << 24;
const RO_REMOUNT = MS_REMOUNT | MS_BIND | MS_RDONLY;

// Docker's (and BuildKit's RUN) default capability set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
// SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP. Everything else leaves the bounding set.
export const DEFAULT_CAPS = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

// The default masked and read-only paths of containerd's OCI spec (what BuildKit's RUN gets).
export const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];
export const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

// Device nodes a container gets (runc's default set), bind-mounted from the host: binds work in a user
// namespace too, where mknod is not allowed.
const DEVICES = ["null", "zero", "full", "random", "urandom", "tty"];

const DEV_LINKS: Array<[string, string]> = [
  ["pts/ptmx", "/dev/ptmx"],
  ["/proc/self/fd", "/dev/fd"],
  ["/proc/self/fd/0", "/dev/stdin"],
  ["/proc/self/fd/1", "/dev/stdout"],
  ["/proc/self/fd/2", "/dev/stderr"],
];

/** Normalised absolute container path ("/a/b"), or a setup error for a relative one. */
export function containerPath(p: string, what: string): string {
  if (!p.startsWith("/")) throw new SandboxSetupError(`${what} must be an absolute path: ${JSON.stringify(p)}`);
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, "") : n;
}

/** The token stream for the launcher (see launcher-script.ts for the ops). */
export function buildPlan(o: PlanOptions): string[] {
  const { spec } = o;
  const t: string[] = ["R", spec.rootfs];
  if (o.overlay) t.push("O", o.overlay.data, o.overlay.cwd);
  else t.push("T", "/", "d", "0", "M", spec.rootfs, "", String(MS_BIND | MS_REC), "", ""); // pivot_root needs a mount point
  // T path kind record: resolve inside the rootfs, create what is missing (recorded stubs are removed later).
  const target = (p: string, kind: "f" | "d", record: boolean) => t.push("T", p, kind, record ? "1" : "0");
  const mount = (src: string, type: string, flags: number, data = "", remount = 0) =>
    t.push("M", src, type, String(flags), data, remount ? String(remount) : "");

  target("/proc", "d", true);
  mount("proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV);
  target("/dev", "d", true);
  mount("tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  for (const d of DEVICES) {
    target(`/dev/${d}`, "f", false);
    mount(`/dev/${d}`, "", MS_BIND);
  }
  target("/dev/pts", "d", false);
  mount("devpts", "devpts", MS_NOSUID | MS_NOEXEC, `newinstance,ptmxmode=0666,mode=0620${o.userns ? "" : ",gid=5"}`);
  target("/dev/shm", "d", false);
  mount("shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  target("/dev/mqueue", "d", false);
  mount("mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  for (const [to, at] of DEV_LINKS) t.push("L", to, at);
  target("/sys", "d", true);
  t.push("Y");
  for (const p of MASKED_PATHS) t.push("P", p);
  for (const p of READONLY_PATHS) t.push("Q", p);
  for (const [file, src] of [
    ["/etc/hosts", o.files.hosts],
    ["/etc/hostname", o.files.hostname],
    ["/etc/resolv.conf", o.files.resolvConf],
  ] as const) {
    // Read-only like BuildKit's: writes fail instead of vanishing silently with the bind mount.
    target(file, "f", true);
    mount(src, "", MS_BIND, "", RO_REMOUNT);
  }
  for (const m of spec.mounts ?? []) {
    const dest = containerPath(m.target, "mount target");
    if (m.type === "bind") {
      const isDir = o.sourceIsDir(m);
      target(dest, isDir ? "d" : "f", true);
      mount(m.source, "", isDir ? MS_BIND | MS_REC : MS_BIND, "", m.readonly ? RO_REMOUNT : 0);
    } else {
      target(dest, "d", true);
      const opts = [`mode=${(m.mode ?? 0o1777).toString(8)}`];
      if (m.size !== undefined) opts.push(`size=${m.size}`);
      mount("tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, opts.join(","));
    }
  }
  t.push("H", o.hostname);
  if (spec.network === "none") t.push("N");
  t.push("C", "W", containerPath(spec.cwd, "cwd"));
  const { uid, gid, additionalGids = [] } = spec.user;
  for (const id of [uid, gid, ...additionalGids]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) throw new SandboxSetupError(`invalid uid/gid ${id}`);
  }
  t.push("K", DEFAULT_CAPS.join(","));
  t.push("U", String(uid), String(gid), o.userns ? "-" : additionalGids.join(","));
  for (const e of spec.env) t.push("E", e);
  if (spec.args.length === 0) throw new SandboxSetupError("empty argv");
  t.push("X", String(spec.args.length), ...spec.args);
  for (const tok of t) if (tok.includes("\0")) throw new SandboxSetupError("NUL byte in sandbox spec");
  return t;
}

/** Syscall numbers the launcher calls through perl's syscall(). */
export interface SyscallNumbers {
  mount: number;
  umount2: number;
  pivot_root: number;
  sethostname: number;
  prctl: number;
  setgroups: number;
  lgetxattr: number;
  llistxattr: number;
  unshare: number;
}

const SYSCALLS: Record<string, SyscallNumbers> = {
  x64: { mount: 165, umount2: 166, pivot_root: 155, sethostname: 170, prctl: 157, setgroups: 116, lgetxattr: 192, llistxattr: 195, unshare: 272 },
  // The asm-generic table.
  arm64: { mount: 40, umount2: 39, pivot_root: 41, sethostname: 161, prctl: 167, setgroups: 159, lgetxattr: 9, llistxattr: 12, unshare: 97 },
  riscv64: { mount: 40, umount2: 39, pivot_root: 41, sethostname: 161, prctl: 167, setgroups: 159, lgetxattr: 9, llistxattr: 12, unshare: 97 },
  loong64: { mount: 40, umount2: 39, pivot_root: 41, sethostname: 161, prctl: 167, setgroups: 159, lgetxattr: 9, llistxattr: 12, unshare: 97 },
};

export function syscallNumbers(arch: string = process.arch): SyscallNumbers {
  const n = SYSCALLS[arch];
  if (!n) throw new SandboxUnsupportedError(`the sandbox does not support the ${arch} architecture yet`);
  return n;
}

/** "name=nr,..." as the launcher's first argument. */
export function syscallArg(n: SyscallNumbers): string {
  return Object.entries(n)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}
