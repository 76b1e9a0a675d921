export * from "./types.js";
export * from "./errors.js";
export { runInSandbox } from "./run.js";
export { hostsFile, randomHostname, sandboxResolvConf } from "./etc-files.js";
