import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "plugin-local",
    include: ["src/**/*.test.ts"],
  },
});
