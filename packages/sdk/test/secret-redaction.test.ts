/**
 * Secret configuration values never leave a plugin process: a fixture plugin that echoes its
 * `secret` key everywhere (log lines, Init errors, config parsing errors, errors of later calls,
 * listings and read bodies) runs under a real PluginHost and, separately, as Velero starts it; the
 * marker appears in no log line and no error.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "../src/errors.js";
import { ObjectStore } from "../src/gen/generated/ObjectStore_pb.js";
import { PluginHost } from "../src/host.js";
import { SecretRedactor } from "../src/logging.js";
import { capturingLogger } from "./support/host.js";
import { isServiceError, launchLikeVelero, unary, type VeleroLaunch } from "./support/velero.js";
import { rejection } from "../src/testing.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/secret-echo-plugin.mjs", import.meta.url));
const PLUGIN = "fixture.stowage.io/secret-echo";
/** A marker with characters that JSON and URL encoding change. */
const MARKER = `s3cr3t "${randomBytes(6).toString("hex")}"/+&=`;

/** Every form the marker could take in text. */
function leaks(text: string): boolean {
  return [MARKER, JSON.stringify(MARKER).slice(1, -1), encodeURIComponent(MARKER), new URLSearchParams({ v: MARKER }).toString().slice(2)].some((form) => text.includes(form));
}

describe("SecretRedactor", () => {
  it("replaces a secret in its raw, JSON-escaped and URL-encoded forms, longest first, and ignores values too short to search for", () => {
    const secrets = new SecretRedactor();
    secrets.set("a", ['key "one"/+&', "key", "x"]);
    expect(secrets.redact('raw key "one"/+& json key \\"one\\"/+& url key%20%22one%22%2F%2B%26 form key+%22one%22%2F%2B%26')).toBe(
      "raw [REDACTED] json [REDACTED] url [REDACTED] form [REDACTED]",
    );
    // "x" is shorter than MIN_REDACTED_LENGTH: not searched for in free text.
    expect(secrets.redact("x marks the spot")).toBe("x marks the spot");
    secrets.set("a", []);
    expect(secrets.active).toBe(false);
    expect(secrets.redact('key "one"/+&')).toBe('key "one"/+&');
  });
});

describe("a plugin that echoes its secret, under a real PluginHost", () => {
  let host: PluginHost;
  let lines: Record<string, unknown>[];

  beforeAll(async () => {
    const capture = capturingLogger();
    lines = capture.lines;
    host = new PluginHost({ plugins: [{ command: process.execPath, args: [FIXTURE, "--log-level", "trace"] }], logger: capture.logger });
    await host.start();
  });

  afterAll(async () => {
    await host.close();
  });

  it("declares the key secret", () => {
    const descriptor = host.plugins().find((p) => p.descriptor.name === PLUGIN)?.descriptor;
    expect(descriptor?.configKeys.find((k) => k.name === "token")?.secret).toBe(true);
  });

  it("redacts the secret from Init errors (its own, the SDK's config parsing, unexpected ones) and from every log line", async () => {
    const store = host.objectStore(PLUGIN);
    for (const mode of ["fail", "parse", "throw"]) {
      const error = await rejection(store.init({ token: MARKER, mode }));
      expect(error.code === Code.InvalidArgument || error.code === Code.Internal, error.message).toBe(true);
      expect(leaks(error.message), error.message).toBe(false);
      expect(leaks(JSON.stringify(error.metadata))).toBe(false);
    }
    await store.init({ token: MARKER, buckets: "b" });
    // The calls fail with the secret in their errors: the SDK redacts them.
    const denied = await rejection(store.deleteObject({ bucket: "b", key: "k" }));
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(leaks(denied.message) || leaks(JSON.stringify(denied.metadata))).toBe(false);
    const listing = await rejection(
      (async () => {
        for await (const page of store.listObjects({ bucket: "b" })) expect(page).toBeDefined();
      })(),
    );
    expect(listing.code).toBe(Code.Unavailable);
    expect(leaks(listing.message)).toBe(false);
    const read = await rejection(
      (async () => {
        const out = await store.getObject({ bucket: "b", key: "k" });
        for await (const chunk of out.body) expect(chunk).toBeDefined();
      })(),
    );
    expect(read.code).toBe(Code.Unavailable);
    expect(leaks(read.message)).toBe(false);
    // The plugin logged the secret many times; the host received none of it.
    const logged = lines.map((l) => JSON.stringify(l)).join("\n");
    expect(logged).toContain("[REDACTED]");
    expect(leaks(logged)).toBe(false);
  });
});

describe("a plugin that echoes its secret, started by Velero", () => {
  let p: VeleroLaunch;

  beforeAll(async () => {
    p = await launchLikeVelero(process.execPath, [FIXTURE, "--log-level=debug"]);
  });

  afterAll(() => {
    p.client.close();
    p.child.kill("SIGKILL");
  });

  it("redacts the secret from Velero-mode Init errors and from the plugin's log", async () => {
    for (const mode of ["fail", "parse", "throw"]) {
      try {
        await unary(p.client, ObjectStore.method.init, { plugin: PLUGIN, config: { token: MARKER, mode } });
        expect.unreachable();
      } catch (error) {
        expect(isServiceError(error)).toBe(true);
        expect(leaks((error as { details: string }).details)).toBe(false);
      }
    }
    await unary(p.client, ObjectStore.method.init, { plugin: PLUGIN, config: { token: MARKER } });
    expect(p.stderr()).toContain("[REDACTED]");
    expect(leaks(p.stderr())).toBe(false);
  });
});
