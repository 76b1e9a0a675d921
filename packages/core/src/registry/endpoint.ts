// Where a registry named in a reference actually lives, and whether plain HTTP is allowed for it.
import { isIP } from "node:net";

/** Docker Hub's API host: references say docker.io, the registry answers on registry-1.docker.io. */
const DOCKER_HUB_API = "registry-1.docker.io";

function hostOnly(registry: string): string {
  if (registry.startsWith("[")) return registry.slice(1, registry.indexOf("]"));
  const colon = registry.lastIndexOf(":");
  return colon >= 0 && registry.indexOf(":") === colon ? registry.slice(0, colon) : registry;
}

/** localhost, 127.0.0.0/8 and ::1: Docker talks plain HTTP to these without being told. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = hostOnly(registry).toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

/** Base URL (ending in "/") of a registry's API. `insecure` lists hosts (host or host:port) allowed over HTTP. */
export function registryBaseUrl(registry: string, insecure: readonly string[] = []): URL {
  const host = registry === "docker.io" || registry === "index.docker.io" ? DOCKER_HUB_API : registry;
  const plain = isLoopbackRegistry(registry) || insecure.includes(registry) || insecure.includes(hostOnly(registry));
  return new URL(`${plain ? "http" : "https"}://${host}/`);
}
