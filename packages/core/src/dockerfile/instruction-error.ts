/**
 * A rejected instruction, before it is tied to a file and line. The instruction layer throws it
 * from helpers that only see strings (flags, mounts, durations); `parseInstruction` rethrows it as
 * a DockerfileError carrying the node's location.
 */
export class InstructionError extends Error {
  override readonly name = "InstructionError";
}
