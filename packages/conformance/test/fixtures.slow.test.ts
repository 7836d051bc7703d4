/**
 * The kit keeps itself honest: against fixture plugins that each break one rule, exactly the case
 * for that rule fails and no other does; against the same fixture with nothing broken, none does.
 * Every run also cleans up completely, and its report prints no 1 KiB key whole.
 */
import { Writable } from "node:stream";
import { describe, it } from "vitest";
import { runConformance, type ConformanceConfig } from "../src/index.js";
import { fixture, lockConfig, memoryConfig, SDK_KNOWN_FAILING } from "./support/fixtures.js";

/** The cases a broken direct-transfer fixture runs (with OS-INIT, which they need). */
const DIRECT = ["OS-DIRECT-*"] as const;

/** The cases a broken object-protection fixture runs (with OS-INIT, which they need). */
const LOCK = ["OS-LOCK-*"] as const;

/**
 * Name, the only case expected to fail (or none), what is broken, the cases run (default: all), and
 * the configuration (default: the memory fixtures'; the object-protection fixtures name a lockable bucket).
 */
const FIXTURES: readonly (readonly [string, string | undefined, string, (readonly string[] | undefined)?, (() => ConformanceConfig)?])[] = [
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
  // Direct transfer (contract 5.8). The good fixture runs every case; a broken one that announces
  // DIRECT_TRANSFER runs the OS-DIRECT-* cases: its bug is in calls only they make (the kit's host
  // sends bodies through PutObject and GetObject).
  ["good-direct-plugin", undefined, "nothing broken, with direct transfer"],
  ["direct-contract-1-0", "OS-DIRECT-RPCS", "DIRECT_TRANSFER announced under contract 1.0", DIRECT],
  ["direct-get-ignores-range", "OS-DIRECT-GET", "the store answers a ranged plan request with the whole object", DIRECT],
  ["direct-plan-past-end", "OS-DIRECT-GET-ERRORS", "PlanGet past the end answers an empty plan instead of INVALID_RANGE", DIRECT],
  ["direct-get-unpinned", "OS-DIRECT-GET-PINNED", "read plans carry no if-match", DIRECT],
  ["direct-put-drops-metadata", "OS-DIRECT-PUT", "CompletePut drops the content type and metadata", DIRECT],
  ["direct-part-unchecked", "OS-DIRECT-PART-CHECKSUM", "the store accepts a part of any size and checksum", DIRECT],
  ["direct-complete-skips-missing", "OS-DIRECT-PUT-MISSING-PART", "CompletePut skips a part the store never received", DIRECT],
  ["direct-begin-drops-sha256", "OS-DIRECT-PUT-MISMATCH", "BeginPut drops the SHA-256 it was given", DIRECT],
  ["direct-upload-id-trusted", "OS-DIRECT-UPLOAD-ID", "SignPart and CompletePut act on the object an upload_id names", DIRECT],
  ["direct-abort-noop", "OS-DIRECT-UPLOAD-FINISHED", "AbortPut does nothing", DIRECT],
  ["direct-begin-no-bucket-check", "OS-DIRECT-PUT-INVALID", "BeginPut plans an upload into a missing bucket", DIRECT],
  ["direct-rpcs-without-capability", "OS-DIRECT-UNSUPPORTED", "without DIRECT_TRANSFER, PlanGet fails with FAILED_PRECONDITION"],
  // Object protection (contract 5.9). The good fixture runs every case; a broken one runs the
  // OS-LOCK-* cases, the only ones that ask for protection.
  ["good-lock-plugin", undefined, "nothing broken, with object protection", undefined, lockConfig],
  ["lock-bucket-unexplained", "OS-LOCK-BUCKET", "GetBucketProtection leaves enforced_by empty", LOCK, lockConfig],
  ["lock-get-no-protection", "OS-LOCK-PUT-HEAD", "the GetObject header leaves out the protection", LOCK, lockConfig],
  ["lock-delete-governance-unchecked", "OS-LOCK-DELETE", "a governance retention does not stop a delete without bypass", LOCK, lockConfig],
  ["lock-overwrite-governance-unchecked", "OS-LOCK-OVERWRITE", "a governance retention does not stop an overwrite without bypass", LOCK, lockConfig],
  ["lock-governance-extend-refused", "OS-LOCK-EXTEND", "extending a governance retention needs bypass", LOCK, lockConfig],
  ["lock-compliance-bypassed", "OS-LOCK-COMPLIANCE", "bypass_governance weakens a compliance retention", LOCK, lockConfig],
  ["lock-removal-ignored", "OS-LOCK-GOVERNANCE-BYPASS", "removing a governance retention with bypass answers success and keeps it", LOCK, lockConfig],
  ["lock-hold-bypassed", "OS-LOCK-HOLD", "bypass_governance lifts a legal hold over a governance retention", LOCK, lockConfig],
  ["lock-lapsed-still-locked", "OS-LOCK-EXPIRY", "an ended retention still refuses a delete", LOCK, lockConfig],
  ["lock-retention-on-missing", "OS-LOCK-INVALID", "SetRetention of a missing key succeeds", LOCK, lockConfig],
  ["lock-not-lockable-dropped", "OS-LOCK-NOT-LOCKABLE", "protection asked in a bucket that is not lockable is dropped", LOCK, lockConfig],
  ["good-lock-direct-plugin", undefined, "nothing broken, with object protection and direct transfer", undefined, lockConfig],
  ["lock-direct-begin-unchecked", "OS-LOCK-DIRECT-PUT", "BeginPut replaces an object under retention", LOCK, lockConfig],
  ["lock-unsupported-dropped", "OS-LOCK-UNSUPPORTED", "without OBJECT_LOCK, a put asking for protection is stored unprotected"],
];

/** A run of more than 160 non-space characters: what reports abbreviate (a 1 KiB key, for one). */
const LONG_RUN = /\S{161,}/u;

// The runs mostly wait (plugin start-up, expiry and grace periods), so they share the time.
describe.concurrent("broken fixture plugins", () => {
  for (const [name, expected, what, run, config = memoryConfig] of FIXTURES) {
    it(`${name} (${what}): ${expected === undefined ? "no case fails" : `only ${expected} fails`}`, async ({ expect }) => {
      let report = "";
      const output = new Writable({
        write(chunk: Buffer, _encoding, done) {
          report += chunk.toString("utf8");
          done();
        },
      });
      const outcome = await runConformance({ plugin: fixture(name), config: config(), knownFailing: [...SDK_KNOWN_FAILING], output, ...(run === undefined ? {} : { run: [...run] }) });
      const failed = outcome.results.filter((r) => r.status === "fail" || r.status === "xpass");
      expect(failed.map((r) => r.id), report).toEqual(expected === undefined ? [] : [expected]);
      expect(outcome.results.flatMap((r) => r.leaks.map((leak) => `${r.id}: ${leak}`))).toEqual([]);
      expect(outcome.leaks).toEqual([]);
      expect(report).not.toMatch(LONG_RUN);
      if (run === undefined) expect(outcome.results.filter((r) => r.status === "xfail").map((r) => r.id)).toEqual([...SDK_KNOWN_FAILING]);
      // No URL or header value of a plan in the report (contract 5.8.4): the fixtures' signed requests carry ?t=<token>.
      expect(report).not.toMatch(/[?&]t=[0-9a-f]{32}/u);
      expect(outcome.exitCode).toBe(expected === undefined ? 0 : 1);
      expect(outcome.errors).toEqual([]);
      if (name === "key-refusal-without-reason") {
        expect(failed[0]?.message).toMatch(/expected INVALID_ARGUMENT\/INVALID_NAME, got INVALID_ARGUMENT: backend error: object name stowage-conformance-\S+…\(\d+ characters left out\)…x+ is too long/u);
      }
      if (name === "good-direct-plugin") {
        const direct = outcome.results.filter((r) => r.id.startsWith("OS-DIRECT-") && r.id !== "OS-DIRECT-UNSUPPORTED");
        expect(direct.length).toBeGreaterThan(10);
        expect(direct.filter((r) => r.status !== "pass").map((r) => `${r.id}: ${r.status} ${r.message ?? ""}`)).toEqual([]);
      }
      if (name === "good-lock-plugin" || name === "good-lock-direct-plugin") {
        const lock = outcome.results.filter((r) => r.id.startsWith("OS-LOCK-") && r.id !== "OS-LOCK-UNSUPPORTED" && (name === "good-lock-direct-plugin" || r.id !== "OS-LOCK-DIRECT-PUT"));
        expect(lock.length).toBeGreaterThan(10);
        expect(lock.filter((r) => r.status !== "pass").map((r) => `${r.id}: ${r.status} ${r.message ?? ""}`)).toEqual([]);
      }
      if (name === "good-memory-plugin") {
        // Without OBJECT_LOCK: the refusal is checked, and the cases that need the capability say why they did not run.
        expect(outcome.results.find((r) => r.id === "OS-LOCK-UNSUPPORTED")?.status).toBe("pass");
        expect(outcome.results.find((r) => r.id === "OS-LOCK-BUCKET")?.message).toBe("the plugin does not announce OBJECT_LOCK");
      }
      // The other direct-transfer (or object-protection) cases ran, and passed.
      if (run !== undefined) expect(outcome.results.filter((r) => r.status === "pass").length).toBeGreaterThan(10);
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

  it("good-lock-plugin without objectStore.lockBucket: the OS-LOCK-* cases that need it are skipped, saying why, and OS-LOCK-NOT-LOCKABLE runs", async ({ expect }) => {
    const base = lockConfig();
    const config = { ...base, objectStore: { bucket: "conformance", ...base.objectStore, lockBucket: undefined } };
    const outcome = await runConformance({ plugin: fixture("good-lock-plugin"), config, run: [...LOCK] });
    const lock = outcome.results.filter((r) => r.id.startsWith("OS-LOCK-"));
    expect(lock.filter((r) => r.status === "pass").map((r) => r.id)).toEqual(["OS-LOCK-NOT-LOCKABLE"]);
    const needing = lock.filter((r) => !["OS-LOCK-NOT-LOCKABLE", "OS-LOCK-UNSUPPORTED", "OS-LOCK-DIRECT-PUT"].includes(r.id));
    expect(needing.length).toBeGreaterThan(8);
    for (const r of needing) {
      expect(r.status, r.id).toBe("skip");
      expect(r.message, r.id).toMatch(/^objectStore\.lockBucket is not configured: the plugin announces OBJECT_LOCK/u);
    }
    expect(outcome.exitCode).toBe(0);
  }, 300_000);
});
