import { defineConfig } from "vitest/config";

// One project per package; tests sit beside the code (*.test.ts) or in a package's test/ folder.
export default defineConfig({
  test: {
    projects: ["packages/*", "examples/*", "interop", "reliability", "packaging", "deploy/helm"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
