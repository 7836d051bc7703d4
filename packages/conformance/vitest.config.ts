import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "conformance",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});
