export class SandboxError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The namespace/mount setup failed before the command ran. */
export class SandboxSetupError extends SandboxError {}

/** The command could not be executed (not found, not executable, bad cwd or user). */
export class SandboxExecError extends SandboxError {}

/** This host cannot run the sandbox (missing tool, no user namespaces for non-root, ...). */
export class SandboxUnsupportedError extends SandboxError {}

/** The run was cancelled through its AbortSignal; the process tree has been killed. */
export class SandboxAbortedError extends SandboxError {}
