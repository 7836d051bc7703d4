import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "plugin-aws",
    include: ["src/**/*.test.ts"],
  },
});
