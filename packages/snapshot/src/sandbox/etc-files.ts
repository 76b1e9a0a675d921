import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { ExtraHost } from "./types.js";

/** 12 hex digits, the short form of a Docker container id (what `hostname` prints in `docker build`). */
export function randomHostname(): string {
  return randomBytes(6).toString("hex");
}

/** /etc/hosts as Docker writes it for a container: loopback names, the hostname, then --add-host entries. */
export function hostsFile(hostname: string, extraHosts: ExtraHost[] = []): string {
  const lines = [`127.0.0.1\tlocalhost ${hostname}`, "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const h of extraHosts) lines.push(`${h.ip}\t${h.host}`);
  return lines.join("\n") + "\n";
}

const FALLBACK_NAMESERVERS = ["8.8.8.8", "8.8.4.4"];

/**
 * resolv.conf for the sandbox, derived from the host's like BuildKit: with host networking it is used as it
 * is; in a private network namespace loopback resolvers (systemd-resolved, dnsmasq) are unreachable, so they
 * are dropped and public resolvers added when none remain.
 */
export function sandboxResolvConf(hostResolvConf: string, network: "host" | "none"): string {
  if (network === "host") return hostResolvConf.endsWith("\n") || hostResolvConf === "" ? hostResolvConf : hostResolvConf + "\n";
  const kept: string[] = [];
  let nameservers = 0;
  for (const line of hostResolvConf.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) {
      const ip = m[1] ?? "";
      if (ip.startsWith("127.") || ip === "::1") continue;
      nameservers++;
    }
    if (line !== "") kept.push(line);
  }
  if (nameservers === 0) for (const ns of FALLBACK_NAMESERVERS) kept.push(`nameserver ${ns}`);
  return kept.join("\n") + "\n";
}

export async function readHostResolvConf(): Promise<string> {
  try {
    return await readFile("/etc/resolv.conf", "utf8");
  } catch {
    return "";
  }
}
