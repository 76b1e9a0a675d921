// Pure parts of the registry client: challenges, platforms, endpoints, credentials, retry policy.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  RegistryError,
  TruncatedBodyError,
  dockerConfigCredentials,
  isLoopbackRegistry,
  isTransient,
  normalizeRegistryKey,
  parseChallenge,
  platformScore,
  registryBaseUrl,
  selectManifest,
  type Descriptor,
} from "@kiln/core";

describe("parseChallenge", () => {
  it("reads Docker Hub's bearer challenge", () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/alpine:pull" },
    });
  });
  it("reads Basic, unquoted values, escapes and skips unknown schemes", () => {
    expect(parseChallenge('Basic realm="kiln \\"test\\""')).toEqual({ scheme: "basic", params: { realm: 'kiln "test"' } });
    expect(parseChallenge(["Negotiate abc", "bearer realm=https://x/token, service=x"])).toEqual({
      scheme: "bearer",
      params: { realm: "https://x/token", service: "x" },
    });
    expect(parseChallenge(undefined)).toBeUndefined();
    expect(parseChallenge("Digest realm=x")).toBeUndefined();
  });
});

describe("platform matching", () => {
  const d = (architecture: string, variant?: string, os = "linux"): Descriptor => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${(architecture + (variant ?? "")).padEnd(64, "0").replace(/[^0-9a-f]/g, "a")}`,
    size: 1,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  it("normalises arm64 variants and architecture aliases", () => {
    expect(platformScore({ os: "linux", architecture: "arm64", variant: "v8" }, { os: "linux", architecture: "arm64" })).toBe(0);
    expect(platformScore({ os: "linux", architecture: "aarch64" }, { os: "linux", architecture: "arm64", variant: "v8" })).toBe(0);
    expect(platformScore({ os: "linux", architecture: "x86_64" }, { os: "linux", architecture: "amd64" })).toBe(0);
    expect(platformScore({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v9" })).toBeUndefined();
    expect(platformScore({ os: "windows", architecture: "amd64" }, { os: "linux", architecture: "amd64" })).toBeUndefined();
  });
  it("prefers the exact arm variant and falls back to older ones only", () => {
    const list = [d("arm", "v5"), d("arm", "v7"), d("arm", "v6"), d("amd64")];
    expect(selectManifest(list, { os: "linux", architecture: "arm", variant: "v7" })).toBe(list[1]);
    expect(selectManifest(list, { os: "linux", architecture: "arm", variant: "v6" })).toBe(list[2]);
    expect(selectManifest([d("arm", "v7")], { os: "linux", architecture: "arm", variant: "v6" })).toBeUndefined();
    expect(selectManifest(list, { os: "linux", architecture: "arm" })).toBe(list[1]); // arm means arm/v7
  });
  it("takes the first of equal matches and never an entry without a platform", () => {
    const a = d("amd64");
    const b = { ...d("amd64"), annotations: { second: "1" } };
    expect(selectManifest([{ ...a, platform: undefined } as unknown as Descriptor, a, b], { os: "linux", architecture: "amd64" })).toBe(a);
  });
});

describe("endpoints", () => {
  it("uses plain HTTP only for loopback and listed registries", () => {
    expect(registryBaseUrl("127.0.0.1:5000").href).toBe("http://127.0.0.1:5000/");
    expect(registryBaseUrl("127.1.2.3").protocol).toBe("http:");
    expect(registryBaseUrl("localhost:5000").protocol).toBe("http:");
    expect(registryBaseUrl("[::1]:5000").href).toBe("http://[::1]:5000/");
    expect(registryBaseUrl("128.0.0.1:5000").protocol).toBe("https:");
    expect(registryBaseUrl("registry.example:5000").protocol).toBe("https:");
    expect(registryBaseUrl("registry.example:5000", ["registry.example:5000"]).protocol).toBe("http:");
    expect(registryBaseUrl("registry.example", ["registry.example"]).protocol).toBe("http:");
    expect(registryBaseUrl("docker.io").href).toBe("https://registry-1.docker.io/");
    expect(isLoopbackRegistry("localhostile.com")).toBe(false);
  });
});

describe("docker config credentials", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kiln-creds-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("matches the CLI's key spellings", () => {
    expect(normalizeRegistryKey("https://index.docker.io/v1/")).toBe("docker.io");
    expect(normalizeRegistryKey("http://Reg.Example:5000/v2/")).toBe("reg.example:5000");
    expect(normalizeRegistryKey("reg.example")).toBe("reg.example");
  });

  it("decodes auth, falls back to username/password, and keeps identity tokens", async () => {
    await writeFile(
      path.join(dir, "config.json"),
      JSON.stringify({
        auths: {
          "https://index.docker.io/v1/": { auth: Buffer.from("hub:pa:ss").toString("base64") },
          "reg.example:5000": { username: "u", password: "p" },
          "oauth.example": { auth: "", identitytoken: "refresh-me" },
        },
      }),
    );
    const creds = dockerConfigCredentials(dir);
    expect(await creds("docker.io")).toEqual({ username: "hub", password: "pa:ss" });
    expect(await creds("reg.example:5000")).toEqual({ username: "u", password: "p" });
    expect(await creds("oauth.example")).toEqual({ username: "", password: "", identityToken: "refresh-me" });
    expect(await creds("reg.example")).toBeUndefined();
  });

  it("reports a missing helper program clearly", async () => {
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ credHelpers: { "reg.example": "kiln-no-such-helper" } }));
    await expect(dockerConfigCredentials(dir)("reg.example")).rejects.toThrow(/docker-credential-kiln-no-such-helper/);
  });
});

describe("retry policy", () => {
  it("retries resets, truncation, 5xx and 429 but not client errors", () => {
    expect(isTransient(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))).toBe(true);
    expect(isTransient(new TruncatedBodyError("http://x", 10, 5))).toBe(true);
    expect(isTransient(new RegistryError(503, "GET", "http://x"))).toBe(true);
    expect(isTransient(new RegistryError(429, "GET", "http://x"))).toBe(true);
    expect(isTransient(new RegistryError(404, "GET", "http://x"))).toBe(false);
    expect(isTransient(new Error("boom"))).toBe(false);
  });
});
