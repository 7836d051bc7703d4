import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "example-backup-server",
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
