import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "packaging",
    include: ["test/**/*.test.ts"],
    // Packing, npm installs and two conformance runs: minutes, not seconds (the bounds are hang guards).
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
