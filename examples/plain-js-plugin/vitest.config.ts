import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "example-plain-js-plugin",
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 300_000,
  },
});
