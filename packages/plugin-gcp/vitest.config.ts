import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "plugin-gcp",
    include: ["src/**/*.test.ts"],
  },
});
