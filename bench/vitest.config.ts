// The bench's own unit tests (not part of the packages' suite): npx vitest run --config bench/vitest.config.ts
import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: { include: ["bench/test/**/*.test.ts"], testTimeout: 60_000, pool: "forks" },
});
