import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/engine/**", "test/e2e/**"],
    // Each file gets its own worker: the Pulumi runtime (mocks, config) is process-wide state.
    pool: "forks",
    isolate: true,
    testTimeout: 60_000,
  },
});
