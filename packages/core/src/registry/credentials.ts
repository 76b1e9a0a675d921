// Credentials the way the docker CLI stores them: $DOCKER_CONFIG/config.json (default ~/.docker),
// `auths` entries (base64 "user:pass" in `auth`, or username/password), and credential helpers
// (`credHelpers` per registry, `credsStore` for all) run as `docker-credential-<name> get`.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { CredentialHelperError } from "./errors.js";

export interface Credentials {
  username: string;
  password: string;
  /** An OAuth refresh token ("identitytoken"), when the registry handed one out at login. */
  identityToken?: string;
}

/** Looks credentials up for a registry host as written in references ("docker.io", "127.0.0.1:5000"). */
export type CredentialSource = (registry: string) => Promise<Credentials | undefined>;

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The key the docker CLI files Docker Hub credentials under. */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || path.join(homedir(), ".docker");
}

/** "https://host:5000/v1/" → "host:5000"; Docker Hub's several spellings → "docker.io". */
export function normalizeRegistryKey(key: string): string {
  let host = key.replace(/^[a-z]+:\/\//i, "").split("/")[0] ?? "";
  host = host.toLowerCase();
  if (host === "index.docker.io" || host === "registry-1.docker.io" || host === "docker.io") return "docker.io";
  return host;
}

function serverUrlFor(registry: string): string {
  return registry === "docker.io" ? DOCKER_HUB_KEY : registry;
}

async function readConfig(file: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return JSON.parse(text) as DockerConfigFile;
}

function fromAuthEntry(entry: AuthEntry): Credentials | undefined {
  let username = entry.username ?? "";
  let password = entry.password ?? "";
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  if (!username && !entry.identitytoken) return undefined;
  const creds: Credentials = { username, password };
  if (entry.identitytoken) creds.identityToken = entry.identitytoken;
  return creds;
}

/** Runs `docker-credential-<helper> get`; "not found" answers yield undefined. */
export function runCredentialHelper(helper: string, serverUrl: string, signal?: AbortSignal): Promise<Credentials | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ["get"], { stdio: ["pipe", "pipe", "pipe"], ...(signal ? { signal } : {}) });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", (e) => reject(new CredentialHelperError(helper, e.message, { cause: e })));
    child.on("close", (code) => {
      if (code !== 0) {
        const msg = (out + err).trim();
        if (/credentials not found/i.test(msg)) resolve(undefined);
        else reject(new CredentialHelperError(helper, msg || `exited with code ${code}`));
        return;
      }
      try {
        const parsed = JSON.parse(out) as { Username?: string; Secret?: string };
        if (!parsed.Secret) return resolve(undefined);
        // Helpers return Username "<token>" for identity tokens (docker/docker-credential-helpers).
        if (parsed.Username === "<token>") resolve({ username: "", password: "", identityToken: parsed.Secret });
        else resolve({ username: parsed.Username ?? "", password: parsed.Secret });
      } catch (e) {
        reject(new CredentialHelperError(helper, "invalid JSON on stdout", { cause: e }));
      }
    });
    child.stdin.end(serverUrl);
  });
}

/**
 * Credentials from the docker CLI config. The file is read on every call (it is small) so a
 * `docker login` in between is seen.
 */
export function dockerConfigCredentials(configDir?: string): CredentialSource {
  return async (registry) => {
    const dir = configDir ?? dockerConfigDir();
    const config = await readConfig(path.join(dir, "config.json"));
    if (!config) return undefined;
    const key = normalizeRegistryKey(registry);
    const helperEntry = Object.entries(config.credHelpers ?? {}).find(([k]) => normalizeRegistryKey(k) === key);
    if (helperEntry) return runCredentialHelper(helperEntry[1], serverUrlFor(key));
    if (config.credsStore) {
      const found = await runCredentialHelper(config.credsStore, serverUrlFor(key));
      if (found) return found;
    }
    for (const [k, entry] of Object.entries(config.auths ?? {})) {
      if (normalizeRegistryKey(k) === key) {
        const creds = fromAuthEntry(entry);
        if (creds) return creds;
      }
    }
    return undefined;
  };
}

/** Fixed credentials per registry host, e.g. from command-line flags. */
export function staticCredentials(map: Record<string, Credentials>): CredentialSource {
  return async (registry) => {
    const key = normalizeRegistryKey(registry);
    return Object.entries(map).find(([k]) => normalizeRegistryKey(k) === key)?.[1];
  };
}
