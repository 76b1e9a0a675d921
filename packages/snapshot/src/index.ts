export {};
export * from "./layer/index.js";
export * from "./context/index.js";
export * from "./rootfs/index.js";
export * from "./sandbox/index.js";
