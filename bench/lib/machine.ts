/** What the figures were measured on. */
import os from "node:os";
import { readFile } from "node:fs/promises";
import { exec } from "./exec.js";

export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  ramGiB: number;
  os: string;
  kernel: string;
  filesystem: string;
  /** 1-minute load averages when the run started and ended: other work on the machine skews absolute times. */
  load: string;
  tools: string[];
}

export async function machineInfo(workDir: string, toolVersions: readonly string[], loadAtStart: number): Promise<MachineInfo> {
  const osRelease = await readFile("/etc/os-release", "utf8").catch(() => "");
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? "unknown";
  const df = (await exec("df", ["-T", "-h", workDir], { allowFailure: true })).trim().split("\n")[1]?.split(/\s+/) ?? [];
  return {
    date: new Date().toISOString(),
    nproc: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    ramGiB: os.totalmem() / 1024 ** 3,
    os: pretty,
    kernel: os.release(),
    filesystem: df.length >= 2 ? `${df[1]} (${df[0]}), ${workDir}` : workDir,
    load: `${loadAtStart.toFixed(2)} at start, ${os.loadavg()[0]!.toFixed(2)} at end`,
    tools: [`node ${process.version}`, ...toolVersions],
  };
}
