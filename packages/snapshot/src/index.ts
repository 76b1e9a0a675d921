export {};
export * from "./layer/index.js";
export * from "./context/index.js";
export * from "./rootfs/index.js";
export * from "./sandbox/index.js";
export { prestartHelperThread, HELPER_BOOTSTRAP, HELPER_SLOT } from "./util/helper-bootstrap.js";
