import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "test-servers",
    include: ["test/**/*.test.ts"],
    // Each file starts a real server (1-3 s); stopping one can take a few seconds more.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
