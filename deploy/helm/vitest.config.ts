import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "deploy-chart",
    include: ["test/**/*.test.ts"],
    // helm template runs take a second or two each on a busy machine (the bounds are hang guards).
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
