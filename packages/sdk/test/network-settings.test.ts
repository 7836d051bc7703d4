/**
 * The pieces of network mode that need no process: the flags and their checks, the caller's
 * identities from a certificate, the allow list, and the session table's keeping of sessions and
 * their secrets apart (docs/protocol.md "Network mode").
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerCertificate } from "node:tls";
import { Metadata } from "@grpc/grpc-js";
import { makeTestPki, type TestPki } from "@stowage/test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import { createHclogLogger, SecretRedactor } from "../src/logging.js";
import { AccessPolicy, loadAllowList } from "../src/plugin/allow-list.js";
import { identityOfCertificate, parseSubjectAltNames } from "../src/plugin/caller-identity.js";
import { defineObjectStore } from "../src/plugin/definition.js";
import { networkSettings, wantsNetwork } from "../src/plugin/network-options.js";
import type { ServiceCall } from "../src/plugin/protocol-adapter.js";
import { SessionTable } from "../src/plugin/sessions.js";
import { thrownBy } from "../src/testing.js";
import type { ObjectStore } from "../src/types.js";

let dir: string;
let pki: TestPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-network-settings-"));
  pki = await makeTestPki(dir);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("network settings", () => {
  const tls = (): string[] => ["--tls-cert", pki.server.certPath, "--tls-key", pki.server.keyPath, "--tls-client-ca", pki.ca.certPath];

  it("is chosen by --listen or by the network option", () => {
    expect(wantsNetwork(["--log-level", "debug"], undefined)).toBe(false);
    expect(wantsNetwork(["--listen=0.0.0.0:7443"], undefined)).toBe(true);
    expect(wantsNetwork([], { listen: "127.0.0.1:0" })).toBe(true);
  });

  it("reads --flag value and --flag=value, applies the defaults, and lets the options win", () => {
    const settings = networkSettings(["--server-flag", "x", "--listen", "0.0.0.0:7443", ...tls(), "--drain-ms=5000", "--max-sessions", "3"]);
    expect(settings).toMatchObject({ listen: "0.0.0.0:7443", drainMs: 5000, maxSessions: 3, tlsRefreshMs: 60_000, sessionIdleMs: 1_800_000, healthListen: undefined, allow: undefined });
    expect(networkSettings(["--listen", "[::]:7443", ...tls()], { drainMs: 7, listen: "127.0.0.1:0" })).toMatchObject({ listen: "127.0.0.1:0", drainMs: 7 });
  });

  it("refuses to run without the TLS files, or with a file that is not PEM, or with a bad address or number", () => {
    expect(() => networkSettings(["--listen", "0.0.0.0:7443", "--tls-cert", pki.server.certPath])).toThrow(/missing: --tls-key, --tls-client-ca\).*never serves plaintext/);
    expect(() => networkSettings(["--listen", "0.0.0.0:7443", "--tls-cert", pki.server.keyPath, "--tls-key", pki.server.keyPath, "--tls-client-ca", pki.ca.certPath])).toThrow(
      /--tls-cert .* is not a PEM certificate/,
    );
    expect(() => networkSettings(["--listen", "0.0.0.0:7443", "--tls-cert", pki.server.certPath, "--tls-key", join(dir, "absent.key"), "--tls-client-ca", pki.ca.certPath])).toThrow(
      /cannot read --tls-key/,
    );
    expect(() => networkSettings(["--listen", "7443", ...tls()])).toThrow(/is not HOST:PORT/);
    expect(() => networkSettings(["--listen", "0.0.0.0:7443", ...tls(), "--drain-ms", "soon"])).toThrow(/--drain-ms must be a whole number/);
    expect(() => networkSettings(["--listen", "0.0.0.0:7443", ...tls(), "--max-sessions", "0"])).toThrow(/--max-sessions must be a whole number of at least 1/);
  });
});

describe("caller identity", () => {
  it("reads Node's subjectaltname, quoted values included", () => {
    expect(parseSubjectAltNames('DNS:a.example, URI:spiffe://td/ns/x/sa/y, IP Address:127.0.0.1, DNS:"b, c.example"')).toEqual([
      { type: "DNS", value: "a.example" },
      { type: "URI", value: "spiffe://td/ns/x/sa/y" },
      { type: "IP Address", value: "127.0.0.1" },
      { type: "DNS", value: "b, c.example" },
    ]);
  });

  it("names URIs, then DNS names, then the CN", () => {
    const cert = { subject: { CN: "host-a" }, subjectaltname: "DNS:host-a.example, URI:spiffe://td/a" } as unknown as PeerCertificate;
    const identity = identityOfCertificate(cert);
    expect(identity.names).toEqual(["uri:spiffe://td/a", "dns:host-a.example", "cn:host-a"]);
    expect(identity.display).toBe("uri:spiffe://td/a");
    expect(identityOfCertificate(undefined).names).toEqual([]);
  });
});

describe("the allow list", () => {
  it("says what is wrong with a bad file", async () => {
    const file = join(dir, "allow.json");
    await writeFile(file, "{not json");
    expect(() => loadAllowList(file)).toThrow(/is not JSON/);
    await writeFile(file, JSON.stringify({ allow: [{ identity: "cn:x", plugins: ["not a name"] }], extra: 1 }));
    expect(() => loadAllowList(file)).toThrow(/allow\[0\]\.plugins\[0\]: must be a plugin name.*the file: Unrecognized key: "extra"/);
    expect(() => loadAllowList(join(dir, "absent.json"))).toThrow(/cannot read the allow list/);
  });

  it("allows what a matching rule names, or everything with *", async () => {
    const file = join(dir, "allow-ok.json");
    await writeFile(file, JSON.stringify({ allow: [{ identity: "cn:a", plugins: ["example.com/one"] }, { identity: "uri:spiffe://td/b", plugins: ["*"] }] }));
    const policy = new AccessPolicy(loadAllowList(file));
    const a = identityOfCertificate({ subject: { CN: "a" } } as unknown as PeerCertificate);
    const b = identityOfCertificate({ subject: { CN: "b" }, subjectaltname: "URI:spiffe://td/b" } as unknown as PeerCertificate);
    expect(policy.allows(a, "example.com/one")).toBe(true);
    expect(policy.allows(a, "example.com/two")).toBe(false);
    expect(policy.allows(b, "example.com/two")).toBe(true);
    const denied = policy.denied(a, "example.com/two");
    expect([denied.code, denied.reason]).toEqual([Code.PermissionDenied, Reason.AccessDenied]);
    expect(new AccessPolicy(undefined).allows(a, "anything.example/x")).toBe(true);
  });
});

describe("the session table", () => {
  /** A fake server call from a caller with CN `cn`, in session `session`. */
  function call(cn: string, session?: string): ServiceCall {
    const metadata = new Metadata();
    if (session !== undefined) metadata.set("stowage-session", session);
    return { metadata, getAuthContext: () => ({ transportSecurityType: "ssl", sslPeerCertificate: { subject: { CN: cn } } as unknown as PeerCertificate }) };
  }

  it("keeps one instance per (identity, session), and every session's secrets out of the logs", async () => {
    const lines: string[] = [];
    const secrets = new SecretRedactor();
    const logger = createHclogLogger({ level: "debug", secrets, destination: { write: (line: string) => void lines.push(line) } });
    const configs: Record<string, string>[] = [];
    const definition = defineObjectStore({
      name: "example.com/secretive",
      configKeys: [{ name: "token", secret: true }],
      create: () =>
        ({
          init: (config: Record<string, string>) => {
            configs.push(config);
            return Promise.resolve();
          },
        }) as unknown as ObjectStore,
    });
    const table = new SessionTable({ definitions: [definition], logger, secrets, policy: new AccessPolicy(undefined), idleMs: 60_000, maxSessions: 4 });
    try {
      const signal = new AbortController().signal;
      await table.registryFor(call("a", "session-one-aaaaaaaa")).init("object-store", definition.name, { token: "first-secret-value" }, signal);
      await table.registryFor(call("a", "session-two-bbbbbbbb")).init("object-store", definition.name, { token: "second-secret-value" }, signal);
      // The same session value from another identity is another session.
      const other = table.registryFor(call("b", "session-one-aaaaaaaa"));
      expect(() => other.get("object-store", definition.name)).toThrow(/not initialised/);
      expect(table.registryFor(call("a", "session-one-aaaaaaaa")).get("object-store", definition.name)).not.toBe(
        table.registryFor(call("a", "session-two-bbbbbbbb")).get("object-store", definition.name),
      );
      expect(table.size).toBe(3);
      logger.info("leaking first-secret-value and second-secret-value");
      expect(lines.at(-1)).not.toMatch(/first-secret-value|second-secret-value/);
      expect(lines.filter((l) => l.includes('"session opened"'))).toHaveLength(3);
      expect(thrownBy(() => table.registryFor(call("a"))).code).toBe(Code.InvalidArgument);
    } finally {
      await table.close();
    }
  });
});
