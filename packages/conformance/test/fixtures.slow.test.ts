/**
 * The kit keeps itself honest: against fixture plugins that each break one rule, exactly the case
 * for that rule fails and no other does; against the same fixture with nothing broken, none does.
 * Every run also cleans up completely, and its report prints no 1 KiB key whole.
 */
import { Writable } from "node:stream";
import { describe, it } from "vitest";
import { runConformance } from "../src/index.js";
import { fixture, memoryConfig, SDK_KNOWN_FAILING } from "./support/fixtures.js";

const FIXTURES: readonly (readonly [string, string | undefined, string])[] = [
  ["good-memory-plugin", undefined, "nothing broken"],
  ["delete-missing-fails", "OS-DELETE-IDEMPOTENT", "deleting a missing key fails"],
  ["list-drops-1001st", "OS-LIST-PAGINATION-1001", "the listing drops its 1,001st key"],
  ["get-error-after-first-chunk", "OS-PUT-LARGE", "an error arrives after the first GET chunk"],
  ["signed-url-never-expires", "OS-SIGNED-GET-EXPIRY", "a signed URL never expires"],
  ["crash-on-init", "OS-INIT", "the process crashes in Init"],
  ["hang-on-cancel", "PROTO-CANCEL-GET", "a cancelled GET never lets go of its key"],
  ["handshake-seventh-field", "PROTO-HANDSHAKE", "the handshake line has go-plugin's seventh field"],
  ["no-grpc-stdio", "PROTO-STDIO", "plugin.GRPCStdio is not served"],
  ["key-refusal-without-reason", "OS-KEY-TOO-LONG", "a 1025-byte key is refused without a reason, quoted whole, by put and delete"],
  ["bucket-before-key-name", "OS-ERROR-PRECEDENCE", "HeadObject reports a missing bucket before a malformed key"],
  ["valid-keys-with-spaces", "PROTO-INIT-UNKNOWN-KEY", "valid_keys has spaces and is not sorted"],
];

/** A run of more than 160 non-space characters: what reports abbreviate (a 1 KiB key, for one). */
const LONG_RUN = /\S{161,}/u;

// The runs mostly wait (plugin start-up, expiry and grace periods), so they share the time.
describe.concurrent("broken fixture plugins", () => {
  for (const [name, expected, what] of FIXTURES) {
    it(`${name} (${what}): ${expected === undefined ? "no case fails" : `only ${expected} fails`}`, async ({ expect }) => {
      let report = "";
      const output = new Writable({
        write(chunk: Buffer, _encoding, done) {
          report += chunk.toString("utf8");
          done();
        },
      });
      const outcome = await runConformance({ plugin: fixture(name), config: memoryConfig(), knownFailing: [...SDK_KNOWN_FAILING], output });
      const failed = outcome.results.filter((r) => r.status === "fail" || r.status === "xpass");
      expect(failed.map((r) => r.id), report).toEqual(expected === undefined ? [] : [expected]);
      expect(outcome.results.flatMap((r) => r.leaks.map((leak) => `${r.id}: ${leak}`))).toEqual([]);
      expect(outcome.leaks).toEqual([]);
      expect(report).not.toMatch(LONG_RUN);
      expect(outcome.results.filter((r) => r.status === "xfail").map((r) => r.id)).toEqual([...SDK_KNOWN_FAILING]);
      expect(outcome.exitCode).toBe(expected === undefined ? 0 : 1);
      expect(outcome.errors).toEqual([]);
      if (name === "key-refusal-without-reason") {
        expect(failed[0]?.message).toMatch(/expected INVALID_ARGUMENT\/INVALID_NAME, got INVALID_ARGUMENT: backend error: object name stowage-conformance-\S+…\(\d+ characters left out\)…x+ is too long/u);
      }
      if (name === "no-grpc-stdio") expect(failed[0]?.message).toMatch(/does not serve plugin\.GRPCStdio\/StreamStdio \(UNIMPLEMENTED/u);
      if (name === "crash-on-init") {
        expect(failed[0]?.message).toMatch(/PLUGIN_CRASHED/);
        const blocked = outcome.results.filter((r) => r.status === "skip" && r.message === "not run: OS-INIT did not pass");
        expect(blocked.length).toBeGreaterThan(30);
        expect(outcome.results.filter((r) => r.status === "pass").map((r) => r.id)).toEqual(
          expect.arrayContaining(["PROTO-HANDSHAKE", "PROTO-MISSING-COOKIE", "PROTO-HEALTH", "PROTO-NOT-INITIALIZED", "PROTO-INIT-UNKNOWN-KEY"]),
        );
      }
    }, 300_000);
  }
});
