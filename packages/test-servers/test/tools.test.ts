import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { toolsDir } from "../src/index.js";

describe("toolsDir", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("is the repo's .tools folder by default", () => {
    vi.stubEnv("STOWAGE_TOOLS_DIR", "");
    const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
    expect(toolsDir()).toBe(path.join(repoRoot, ".tools"));
  });

  it("follows STOWAGE_TOOLS_DIR", () => {
    vi.stubEnv("STOWAGE_TOOLS_DIR", "relative/tools");
    expect(toolsDir()).toBe(path.resolve("relative/tools"));
  });
});
