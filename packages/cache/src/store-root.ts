import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

/**
 * Where the store lives when no root is given: $KILN_STORE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
 * Empty variables are ignored, and so is a relative XDG_CACHE_HOME (the XDG spec says to).
 */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.KILN_STORE;
  if (explicit) return resolve(explicit);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "kiln");
  return join(homedir(), ".cache", "kiln");
}
