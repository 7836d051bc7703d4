import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "plugin-azure",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});
