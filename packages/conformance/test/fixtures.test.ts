/**
 * The kit keeps itself honest: against fixture plugins that each break one rule, exactly the case
 * for that rule fails and no other does; against the same fixture with nothing broken, none does.
 */
import { describe, it } from "vitest";
import { runConformance } from "../src/index.js";
import { fixture, memoryConfig, SDK_KNOWN_FAILING } from "./helpers.js";

const FIXTURES: readonly (readonly [string, string | undefined, string])[] = [
  ["good-memory-plugin", undefined, "nothing broken"],
  ["delete-missing-fails", "OS-DELETE-IDEMPOTENT", "deleting a missing key fails"],
  ["list-drops-1001st", "OS-LIST-PAGINATION-1001", "the listing drops its 1,001st key"],
  ["get-error-after-first-chunk", "OS-PUT-LARGE", "an error arrives after the first GET chunk"],
  ["signed-url-never-expires", "OS-SIGNED-GET-EXPIRY", "a signed URL never expires"],
  ["crash-on-init", "OS-INIT", "the process crashes in Init"],
  ["hang-on-cancel", "PROTO-CANCEL-GET", "a cancelled GET never lets go of its key"],
];

// The runs mostly wait (plugin start-up, expiry and grace periods), so they share the time.
describe.concurrent("broken fixture plugins", () => {
  for (const [name, expected, what] of FIXTURES) {
    it(`${name} (${what}): ${expected === undefined ? "no case fails" : `only ${expected} fails`}`, async ({ expect }) => {
      const outcome = await runConformance({ plugin: fixture(name), config: memoryConfig(), knownFailing: [...SDK_KNOWN_FAILING] });
      const failed = outcome.results.filter((r) => r.status === "fail" || r.status === "xpass");
      expect(failed.map((r) => r.id)).toEqual(expected === undefined ? [] : [expected]);
      expect(outcome.results.filter((r) => r.status === "xfail").map((r) => r.id)).toEqual([...SDK_KNOWN_FAILING]);
      expect(outcome.exitCode).toBe(expected === undefined ? 0 : 1);
      expect(outcome.errors).toEqual([]);
      if (name === "crash-on-init") {
        expect(failed[0]?.message).toMatch(/PLUGIN_CRASHED/);
        const blocked = outcome.results.filter((r) => r.status === "skip" && r.message === "not run: OS-INIT did not pass");
        expect(blocked.length).toBeGreaterThan(30);
        expect(outcome.results.filter((r) => r.status === "pass").map((r) => r.id)).toEqual(
          expect.arrayContaining(["PROTO-HANDSHAKE", "PROTO-MISSING-COOKIE", "PROTO-HEALTH", "PROTO-NOT-INITIALIZED", "PROTO-INIT-UNKNOWN-KEY"]),
        );
      }
    }, 90_000);
  }
});
