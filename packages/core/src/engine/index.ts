export { build, type BuildOptions, type BuildResult, type BuildRun, type OutputSpec, type StepReport } from "./build.js";
export type { BuildEvent, MissReason, StepRef } from "./events.js";
export { describeMiss } from "./events.js";
export { BuildStepError, BuildOptionsError } from "./errors.js";
export { openStore, type KilnStore } from "./store.js";
export { resolveBaseImage, loadImageFromStore, BaseImageNotFoundError, type ImagePuller, type ResolvedBase } from "./base-image.js";
export { ImageFsView } from "./fs-view.js";
export { stepCacheKey, canonicalJson } from "./cache-key.js";
export { compareLastBuilds, formatComparison, type BuildComparison, type StepComparison, type ExplainBuildsOptions } from "./explain-builds.js";
