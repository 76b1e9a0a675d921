// Writes a small context tree for tests: path → content; a path ending in "/" is an (empty) directory.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

export async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(root, p, ".."), { recursive: true });
    if (p.endsWith("/")) await mkdir(join(root, p), { recursive: true });
    else await writeFile(join(root, p), content);
  }
}
