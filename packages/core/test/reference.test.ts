import { describe, it, expect } from "vitest";
import { parseReference, formatReference, familiarName, InvalidReferenceError } from "@kiln/core";

describe("image references (Docker normalization)", () => {
  it.each([
    ["alpine", "docker.io/library/alpine:latest", "alpine:latest"],
    ["alpine:3.19", "docker.io/library/alpine:3.19", "alpine:3.19"],
    ["library/alpine", "docker.io/library/alpine:latest", "alpine:latest"],
    ["myorg/app:1", "docker.io/myorg/app:1", "myorg/app:1"],
    ["index.docker.io/myorg/app", "docker.io/myorg/app:latest", "myorg/app:latest"],
    ["127.0.0.1:5000/kiln-test/busybox", "127.0.0.1:5000/kiln-test/busybox:latest", "127.0.0.1:5000/kiln-test/busybox:latest"],
    ["localhost/app:dev", "localhost/app:dev", "localhost/app:dev"],
    ["registry.example.com:443/a/b/c:v1.2", "registry.example.com:443/a/b/c:v1.2", "registry.example.com:443/a/b/c:v1.2"],
    [`alpine@sha256:${"a".repeat(64)}`, `docker.io/library/alpine@sha256:${"a".repeat(64)}`, `alpine@sha256:${"a".repeat(64)}`],
    [`app:1@sha256:${"b".repeat(64)}`, `docker.io/library/app:1@sha256:${"b".repeat(64)}`, `app:1@sha256:${"b".repeat(64)}`],
    ["[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"],
  ])("%s → %s", (input, full, familiar) => {
    const ref = parseReference(input);
    expect(formatReference(ref)).toBe(full);
    expect(familiarName(ref)).toBe(familiar);
  });

  it.each([
    ["", "at least one component"],
    ["Alpine", "must be lowercase"],
    ["alpine:bad tag", "invalid tag format"],
    ["alpine@sha256:abc", "invalid digest format"],
    ["-leading/dash", "invalid reference format"],
    ["a//b", "invalid reference format"],
    ["alpine:", "invalid tag format"],
  ])("refuses %j", (input, message) => {
    expect(() => parseReference(input)).toThrow(InvalidReferenceError);
    expect(() => parseReference(input)).toThrow(message);
  });
});
