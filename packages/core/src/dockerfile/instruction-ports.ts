// EXPOSE values as the image config records them ("80/tcp"), with BuildKit's dispatch-time
// parsing (dockerfile2llb/convert_expose.go): `[ip:][hostPort:]port[-end][/proto]`, ranges
// expanded, protocol lower-cased and defaulting to tcp.
import { isIP } from "node:net";
import { InstructionError } from "./instruction-error.js";

function portNumber(text: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  const n = Number.parseInt(text, 10);
  return n >= 0 && n <= 65535 ? n : undefined;
}

function portRange(text: string): [number, number] | undefined {
  if (text === "") return undefined;
  const dash = text.indexOf("-");
  const startText = dash === -1 ? text : text.slice(0, dash);
  const start = portNumber(startText);
  if (start === undefined) return undefined;
  if (dash === -1 || startText === text.slice(dash + 1)) return [start, start];
  const end = portNumber(text.slice(dash + 1));
  if (end === undefined || end < start) return undefined;
  return [start, end];
}

function splitParts(raw: string): [ip: string, hostPort: string, containerPort: string] {
  const parts = raw.split(":");
  const n = parts.length;
  if (n === 1) return ["", "", parts[0] as string];
  return [parts.slice(0, Math.max(0, n - 2)).join(":"), parts[n - 2] as string, parts[n - 1] as string];
}

/** Expands one EXPOSE word into "port/proto" entries. */
export function parseExposedPort(raw: string): string[] {
  let [ip, hostPort, containerPort] = splitParts(raw);
  const slash = containerPort.indexOf("/");
  const proto = slash === -1 ? "" : containerPort.slice(slash + 1);
  containerPort = slash === -1 ? containerPort : containerPort.slice(0, slash);
  if (containerPort === "") throw new InstructionError(`invalid port: ${JSON.stringify(raw)}: no port specified`);
  const protocol = proto === "" ? "tcp" : proto.toLowerCase();
  if (!["tcp", "udp", "sctp"].includes(protocol)) {
    throw new InstructionError(`invalid port: ${JSON.stringify(raw)}: invalid proto: ${proto}`);
  }
  if (ip.startsWith("[") && ip.endsWith("]")) ip = ip.slice(1, -1);
  if (ip !== "" && isIP(ip) === 0) throw new InstructionError(`invalid IP address: ${ip}`);
  const range = portRange(containerPort);
  if (!range) throw new InstructionError(`invalid containerPort: ${containerPort}`);
  if (hostPort !== "") {
    const hostRange = portRange(hostPort);
    if (!hostRange) throw new InstructionError(`invalid hostPort: ${hostPort}`);
    if (range[1] - range[0] !== hostRange[1] - hostRange[0] && range[1] !== range[0]) {
      throw new InstructionError(
        `invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`,
      );
    }
  }
  const out: string[] = [];
  for (let port = range[0]; port <= range[1]; port++) out.push(`${port}/${protocol}`);
  return out;
}

/** All "port/proto" entries of an (expanded) EXPOSE instruction's ports, in order. */
export function exposedPorts(ports: readonly string[]): string[] {
  return ports.flatMap(parseExposedPort);
}
