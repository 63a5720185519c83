import { defineConfig } from "vitest/config";

// Tests that need the real Pulumi engine (scripts/engine/bootstrap.sh); run by `npm run test:engine`.
export default defineConfig({
  test: {
    include: ["test/engine/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
