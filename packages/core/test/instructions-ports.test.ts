import { describe, expect, it } from "vitest";
import { exposedPorts, parseExposedPort } from "../src/dockerfile/instruction-ports.js";

describe("EXPOSE port specs", () => {
  it("normalises ports, protocols and ranges like BuildKit", () => {
    expect(exposedPorts(["80", "53/udp", "8000-8002/TCP", "9/sctp"])).toEqual([
      "80/tcp",
      "53/udp",
      "8000/tcp",
      "8001/tcp",
      "8002/tcp",
      "9/sctp",
    ]);
    // Host parts are tolerated (BuildKit only lints them) and dropped.
    expect(parseExposedPort("127.0.0.1:8080:80")).toEqual(["80/tcp"]);
    expect(parseExposedPort("[::1]:8080:80/udp")).toEqual(["80/udp"]);
    expect(parseExposedPort("8080-8081:80")).toEqual(["80/tcp"]);
    expect(parseExposedPort("5-5")).toEqual(["5/tcp"]);
  });
  it("rejects with BuildKit's messages", () => {
    expect(() => parseExposedPort("/tcp")).toThrow('invalid port: "/tcp": no port specified');
    expect(() => parseExposedPort("80/http")).toThrow('invalid port: "80/http": invalid proto: http');
    expect(() => parseExposedPort("http")).toThrow("invalid containerPort: http");
    expect(() => parseExposedPort("70000")).toThrow("invalid containerPort: 70000");
    expect(() => parseExposedPort("90-80")).toThrow("invalid containerPort: 90-80");
    expect(() => parseExposedPort("x:80")).toThrow("invalid hostPort: x");
    expect(() => parseExposedPort("nope:1:80")).toThrow("invalid IP address: nope");
    expect(() => parseExposedPort("1-3:5-6")).toThrow("invalid ranges specified for container and host Ports: 5-6 and 1-3");
  });
});
