import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "reliability",
    include: ["test/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // Trials measure processes, descriptors and disks: one file at a time keeps them from disturbing each other.
    fileParallelism: false,
  },
});
