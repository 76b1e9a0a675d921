import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources, not dist/, so no build is needed between edits.
    alias: {
      "@kiln/core": pkg("core"),
      "@kiln/snapshot": pkg("snapshot"),
      "@kiln/cache": pkg("cache"),
    },
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    // Services (dockerd, registry) start lazily from test/support; this stops what the run started.
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    pool: "forks",
  },
});
