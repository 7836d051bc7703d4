// @ts-check
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

const cloudSdks = ["@aws-sdk/*", "@azure/*", "@google-cloud/*", "minio"];

export default defineConfig(
  { ignores: ["**/dist/**", "**/gen/**", "**/node_modules/**", ".tools/**", "**/*.mjs", "**/*.js", "**/vitest.config.ts"] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unnecessary-condition": "off",
      "@typescript-eslint/no-confusing-void-expression": "off",
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Cloud SDKs belong only in their plugin packages.
    files: ["packages/sdk/src/**", "packages/plugin-local/src/**", "packages/cli/src/**", "packages/conformance/src/**"],
    ignores: ["**/*.test.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: cloudSdks }] },
  },
  {
    files: ["**/*.test.ts", "**/test/**"],
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-floating-promises": "off",
    },
  },
);
