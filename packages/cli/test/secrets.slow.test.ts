/**
 * Secrets never reach a log line, an error or the CLI's output: a marker goes into every config key
 * that any Stowage plugin marks `secret` (found from the plugins' own descriptors, so a new secret
 * key is covered without touching this test), through Init under a real PluginHost with a
 * capturing logger and through the `stowage` command, alone and in combinations that make Init
 * fail: unknown keys, invalid values, and every endpoint pointed at a server that echoes each
 * request back (as a misbehaving proxy would). It launches every plugin many times (the slow tier).
 */
import { createHclogLogger, type PluginDescriptor, type StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, tempDir } from "./support/cli.js";

/** Every plugin executable of the repository (built). */
const PLUGINS = ["plugin-local", "plugin-aws", "plugin-ibm-cos", "plugin-azure", "plugin-gcp"].map((p) => fileURLToPath(new URL(`../../${p}/dist/main.js`, import.meta.url)));
const MARKER = `secret-marker-${randomBytes(8).toString("hex")}`;

function leaks(text: string): boolean {
  return text.includes(MARKER);
}

/** Answers every request with 400 and a body repeating the request (line, headers, body). */
function echoServer(): Server {
  return createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const echoed = `${Buffer.concat(parts).toString("utf8")} ${req.method ?? ""} ${req.url ?? ""} ${JSON.stringify(req.headers)}`;
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "invalid_request", error_description: echoed, errorMessage: echoed }));
    });
  });
}

/** The Init configurations tried for one plugin: secrets alone, with an unknown key, with each key invalid, with every endpoint at the echo server. */
function configsFor(descriptor: PluginDescriptor, echo: string): Record<string, string>[] {
  const secrets = Object.fromEntries(descriptor.configKeys.filter((k) => k.secret === true).map((k) => [k.name, MARKER]));
  const required = Object.fromEntries(descriptor.configKeys.filter((k) => k.required === true && k.secret !== true).map((k) => [k.name, "x"]));
  const endpoints = Object.fromEntries(descriptor.configKeys.filter((k) => k.secret !== true && /(url|uri|endpoint)$/i.test(k.name)).map((k) => [k.name, echo]));
  const configs: Record<string, string>[] = [secrets, { ...secrets, notAStowageKey: "1" }, { ...required, ...secrets, ...endpoints }];
  for (const key of descriptor.configKeys.filter((k) => k.secret !== true)) configs.push({ ...required, ...secrets, ...endpoints, [key.name]: "?not valid?" });
  return configs;
}

describe("secret config values under a real PluginHost", () => {
  let host: PluginHost;
  let echo: Server;
  let echoUrl: string;
  const lines: string[] = [];

  beforeAll(async () => {
    echo = echoServer();
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    echoUrl = `http://127.0.0.1:${String((echo.address() as AddressInfo).port)}`;
    const logger = createHclogLogger({ level: "trace", destination: { write: (line: string) => lines.push(line) } });
    host = new PluginHost({ plugins: PLUGINS.map((p) => nodePluginCommand(p, { args: ["--log-level", "trace"] })), logger });
    await host.start();
  }, 60_000);

  afterAll(async () => {
    await host.close();
    echo.closeAllConnections();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  it("finds secret keys to test in the plugins' descriptors", () => {
    const secret = host.plugins().flatMap((p) => p.descriptor.configKeys.filter((k) => k.secret === true).map((k) => `${p.descriptor.name} ${k.name}`));
    // At least IBM COS's apiKey; any key a plugin adds later is tested as well.
    expect(secret).toContain("stowage.io/ibm-cos apiKey");
  });

  it("appear in no Init error and no log line, whatever the configuration", async () => {
    let tried = 0;
    for (const { descriptor } of host.plugins()) {
      if (!descriptor.configKeys.some((k) => k.secret === true)) continue;
      const store = descriptor.kind === "object-store" ? host.objectStore(descriptor.name) : host.blockStore(descriptor.name);
      for (const config of configsFor(descriptor, echoUrl)) {
        tried += 1;
        try {
          await store.init(config, { timeoutMs: 60_000 });
        } catch (error) {
          const e = error as StowageError;
          expect(leaks(`${e.message} ${JSON.stringify(e.metadata)}`), `${descriptor.name} ${JSON.stringify(Object.keys(config))}: ${e.message}`).toBe(false);
        }
      }
    }
    expect(tried).toBeGreaterThan(2);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter(leaks)).toEqual([]);
  }, 300_000);
});

describe("secret config values through the stowage command", () => {
  let echo: Server;
  let echoUrl: string;

  beforeAll(async () => {
    echo = echoServer();
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    echoUrl = `http://127.0.0.1:${String((echo.address() as AddressInfo).port)}`;
  });

  afterAll(async () => {
    echo.closeAllConnections();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  it("appear neither on stdout nor on stderr, with the host's and plugins' logs on", async () => {
    const cwd = await tempDir();
    const pluginArgs = PLUGINS.flatMap((p) => ["--plugin", p]);
    const listing = await runCli(["--no-embedded", ...pluginArgs, "plugins", "--json"], { cwd });
    expect(listing.code).toBe(0);
    const { plugins } = JSON.parse(listing.out) as { plugins: { name: string; kind: string; configKeys: { name: string; secret: boolean }[] }[] };
    const withSecrets = plugins.filter((p) => p.configKeys.some((k) => k.secret));
    expect(withSecrets.length).toBeGreaterThan(0);
    for (const plugin of withSecrets) {
      const configArgs = plugin.configKeys.flatMap((k) => (k.secret ? ["--config", `${k.name}=${MARKER}`] : /(url|uri|endpoint)$/i.test(k.name) ? ["--config", `${k.name}=${echoUrl}`] : []));
      const command = plugin.kind === "object-store" ? ["object", "ls", "backups"] : ["snapshot", "ls"];
      const result = await runCli(["--no-embedded", ...pluginArgs, "--log-level", "trace", ...command, "--provider", plugin.name, ...configArgs], { cwd });
      expect(result.code, result.stderr).not.toBe(0);
      expect(leaks(result.out), result.out).toBe(false);
      expect(leaks(result.stderr), result.stderr).toBe(false);
    }
  }, 300_000);
});
