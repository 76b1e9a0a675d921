// Enough of containerd's platforms.Parse to tell whether a FROM --platform value is a constant
// platform and to name its OS and architecture.

const KNOWN_OS = new Set([
  "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl", "netbsd",
  "openbsd", "plan9", "solaris", "wasip1", "windows", "zos",
]);
const ARCH_ALIASES: Record<string, string> = {
  "i386": "386", "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
  "armhf": "arm", "armel": "arm", "arm": "arm", "386": "386", "ppc64le": "ppc64le", "ppc64": "ppc64",
  "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64le", "mips64": "mips64", "mipsle": "mipsle",
  "mips": "mips", "loong64": "loong64", "wasm": "wasm",
};

export interface ParsedPlatform {
  os: string;
  architecture: string;
}

/** undefined when the text is not a platform specifier containerd would accept. */
export function parsePlatformSpec(text: string): ParsedPlatform | undefined {
  if (!/^[A-Za-z0-9_.()-]+(\/[A-Za-z0-9_.-]+){0,2}$/.test(text)) return undefined;
  const parts = text.toLowerCase().split("/");
  const first = (parts[0] as string).replace(/\(.*\)$/, "");
  if (parts.length === 1) {
    if (KNOWN_OS.has(first)) return { os: first, architecture: "amd64" };
    const arch = ARCH_ALIASES[first];
    return arch === undefined ? undefined : { os: "linux", architecture: arch };
  }
  const arch = ARCH_ALIASES[parts[1] as string];
  if (!KNOWN_OS.has(first) || arch === undefined) return undefined;
  return { os: first, architecture: arch };
}
