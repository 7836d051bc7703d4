/**
 * The example plugin certifies itself: the conformance kit's suites, registered in this file, run
 * against the built executable (`dist/main.js`) through the real host.
 */
import { fileURLToPath } from "node:url";
import { registerConformanceSuites } from "@stowage/conformance/vitest";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

registerConformanceSuites({
  plugin: { command: process.execPath, args: [MAIN] },
  config: {
    largeObjectMiB: 16,
    objectStore: { plugin: "example.com/memory", config: { buckets: "conformance", maxTotalMiB: "256" }, bucket: "conformance" },
  },
  // The SDK's Shutdown reply is cut off by forceShutdown (see docs/conformance.md, "Known failures").
});
