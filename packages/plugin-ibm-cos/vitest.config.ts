import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "plugin-ibm-cos",
    include: ["src/**/*.test.ts"],
  },
});
