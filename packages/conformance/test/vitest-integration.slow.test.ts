/**
 * The library entry for TypeScript authors: the suites registered in this very file, against the
 * conformant in-memory fixture, one test per case.
 */
import { registerConformanceSuites } from "../src/vitest.js";
import { fixture, memoryConfig, SDK_KNOWN_FAILING } from "./support/fixtures.js";

// The slow cases are left out here: fixtures.slow.test.ts runs every case against the same fixture.
registerConformanceSuites({
  plugin: fixture("good-memory-plugin"),
  config: memoryConfig(),
  knownFailing: [...SDK_KNOWN_FAILING],
  skip: ["PROTO-CANCEL-*", "PROTO-CRASH-*", "PROTO-DEADLINE", "PROTO-NO-ORPHANS", "PROTO-SIGINT", "OS-LIST-PAGINATION-1001", "OS-PUT-LARGE"],
});
