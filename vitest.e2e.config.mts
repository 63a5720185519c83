import { defineConfig } from "vitest/config";

// End-to-end: stacks applied through the real Pulumi engine and provider plugins on PostgreSQL
// 15-18, probed with the services' own logins (isolation.e2e) and used by the migration tools and
// ORMs service teams run (clients.e2e). Run by `npm run test:e2e`.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
