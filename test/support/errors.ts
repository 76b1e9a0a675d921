/** Typed errors for the test-support layer, so a failing setup says exactly what broke. */

export class MissingToolError extends Error {
  override readonly name = "MissingToolError";
  constructor(
    readonly tool: string,
    readonly aptPackage: string,
  ) {
    super(
      `required tool "${tool}" not found on PATH (Debian package: ${aptPackage}). ` +
        `Install the test dependencies with \`.ci/run deps\` (or \`apt-get install -y ${aptPackage}\`).`,
    );
  }
}

export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
  ) {
    super(
      `command failed (${signal ? `signal ${signal}` : `exit ${exitCode}`}): ${command}` +
        (stderr.trim() ? `\n--- stderr (tail) ---\n${tail(stderr, 4000)}` : ""),
    );
  }
}

export class ServiceError extends Error {
  override readonly name = "ServiceError";
  constructor(
    readonly service: string,
    message: string,
  ) {
    super(`${service}: ${message}`);
  }
}

export class ImageFormatError extends Error {
  override readonly name = "ImageFormatError";
}

export function tail(text: string, max: number): string {
  return text.length <= max ? text : "…" + text.slice(text.length - max);
}
