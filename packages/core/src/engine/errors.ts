import type { StepRef } from "./events.js";

/** A step failed: names the Dockerfile line and the instruction, keeps the cause. */
export class BuildStepError extends Error {
  override readonly name = "BuildStepError";
  constructor(
    readonly file: string,
    readonly step: StepRef,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}:${step.line}: ${step.instruction}: ${detail}`, options);
  }
}

export class BuildOptionsError extends Error {
  override readonly name = "BuildOptionsError";
}
