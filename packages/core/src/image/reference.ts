// Image references as Docker normalizes them (distribution/reference): `alpine` is
// `docker.io/library/alpine:latest`, a first component with a dot or port, or `localhost`, is a registry.

import type { Digest } from "./oci.js";

export class InvalidReferenceError extends Error {
  override readonly name = "InvalidReferenceError";
  constructor(readonly reference: string, reason: string) {
    super(`invalid reference "${reference}": ${reason}`);
  }
}

export interface ImageReference {
  /** Registry host, possibly with port: "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** Repository path inside the registry: "library/alpine". */
  path: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
const MAX_NAME_LENGTH = 255;

const componentRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainComponentRe = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const tagRe = /^[\w][\w.-]{0,127}$/;
const digestRe = /^sha256:[a-f0-9]{64}$/;
const ipv6Re = /^\[[a-fA-F0-9:]+\]$/;

function isDomain(text: string): boolean {
  const [host, port, ...rest] = splitHostPort(text);
  if (rest.length > 0 || host === undefined) return false;
  if (port !== undefined && !/^[0-9]+$/.test(port)) return false;
  if (ipv6Re.test(host)) return true;
  return host.split(".").every((c) => domainComponentRe.test(c));
}

function splitHostPort(text: string): [string | undefined, string | undefined, ...string[]] {
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0) return [undefined, undefined];
    const host = text.slice(0, end + 1);
    const rest = text.slice(end + 1);
    if (rest === "") return [host, undefined];
    if (!rest.startsWith(":")) return [undefined, undefined];
    return [host, rest.slice(1)];
  }
  const parts = text.split(":");
  return parts as [string, string | undefined, ...string[]];
}

/** Parses and normalizes a reference; throws InvalidReferenceError for anything Docker refuses. */
export function parseReference(input: string): ImageReference {
  const text = input.trim();
  if (text === "") throw new InvalidReferenceError(input, "repository name must have at least one component");

  let remainder = text;
  let digest: Digest | undefined;
  const at = remainder.indexOf("@");
  if (at >= 0) {
    const d = remainder.slice(at + 1);
    if (!digestRe.test(d)) throw new InvalidReferenceError(input, "invalid digest format");
    digest = d as Digest;
    remainder = remainder.slice(0, at);
  }

  let tag: string | undefined;
  const lastSlash = remainder.lastIndexOf("/");
  const lastColon = remainder.lastIndexOf(":");
  if (lastColon > lastSlash) {
    tag = remainder.slice(lastColon + 1);
    remainder = remainder.slice(0, lastColon);
    if (!tagRe.test(tag)) throw new InvalidReferenceError(input, "invalid tag format");
  }

  let domain = DEFAULT_DOMAIN;
  let path = remainder;
  const firstSlash = remainder.indexOf("/");
  if (firstSlash >= 0) {
    const first = remainder.slice(0, firstSlash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first) {
      if (!isDomain(first)) throw new InvalidReferenceError(input, "invalid registry host");
      domain = first;
      path = remainder.slice(firstSlash + 1);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path === "") throw new InvalidReferenceError(input, "repository name must have at least one component");
  if (path.toLowerCase() !== path) throw new InvalidReferenceError(input, "repository name must be lowercase");
  for (const component of path.split("/")) {
    if (!componentRe.test(component)) throw new InvalidReferenceError(input, "invalid reference format");
  }
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = OFFICIAL_REPO_PREFIX + path;
  if (domain.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError(input, `repository name must not be more than ${MAX_NAME_LENGTH} characters`);
  }

  const ref: ImageReference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = "latest";
  return ref;
}

/** `docker.io/library/alpine` */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Full normalized string: `docker.io/library/alpine:latest`, `host/repo@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  let out = repositoryName(ref);
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** The short form `docker images` shows: `alpine:latest`, `myorg/app:1`, `127.0.0.1:5000/x:y`. */
export function familiarName(ref: ImageReference): string {
  let name = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path.startsWith(OFFICIAL_REPO_PREFIX) ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : ref.path;
  }
  if (ref.tag !== undefined) name += `:${ref.tag}`;
  if (ref.digest !== undefined) name += `@${ref.digest}`;
  return name;
}
