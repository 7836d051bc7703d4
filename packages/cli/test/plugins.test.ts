import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli, runJson, tempDir } from "./support/cli.js";

const INFO_FIXTURE = fileURLToPath(new URL("../../sdk/test/fixtures/info-plugin.mjs", import.meta.url));

interface PluginsDoc {
  plugins: {
    name: string;
    kind: string;
    capabilities: string[];
    configKeys: { name: string; required: boolean }[];
    executable: string;
    embedded: boolean;
    runtime: string;
  }[];
}

describe("stowage plugins", () => {
  it("lists both kinds of the embedded stowage.io/local plugin as JSON", async () => {
    const cwd = await tempDir();
    const doc = (await runJson(["plugins", "--json"], { cwd })) as PluginsDoc;
    const local = doc.plugins.filter((p) => p.name === "stowage.io/local");
    expect(local.map((p) => p.kind).sort()).toEqual(["block-store", "object-store"]);
    for (const plugin of local) {
      expect(plugin.embedded).toBe(true);
      expect(existsSync(plugin.executable)).toBe(true);
      expect(plugin.runtime).not.toBe("");
      expect(plugin.configKeys.find((k) => k.name === "root")?.required).toBe(true);
    }
    expect(local.find((p) => p.kind === "object-store")?.capabilities).toContain("SIGNED_GET_URLS");
  }, 30_000);

  it("prints a table", async () => {
    const cwd = await tempDir();
    const result = await runCli(["plugins"], { cwd });
    expect(result.code).toBe(0);
    const lines = result.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+KIND\s+CAPABILITIES\s+EXECUTABLE\s+RUNTIME$/);
    expect(lines.filter((l) => l.startsWith("stowage.io/local"))).toHaveLength(2);
  }, 30_000);

  it("fails with exit status 2 when there is nothing to launch or a plugin cannot start", async () => {
    const cwd = await tempDir();
    const none = await runCli(["--no-embedded", "plugins"], { cwd });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("--no-embedded needs --plugin-dir or --plugin");
    const missing = await runCli(["plugins", "--plugin", "./no-such-plugin"], { cwd });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^stowage: --plugin .*no-such-plugin is not a file\n$/);
    const option = await runCli(["plugins", "--log-level", "loud"], { cwd });
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/^stowage: option '--log-level <level>' argument 'loud' is invalid/);
  }, 30_000);

  it("prints the stderr of a plugin that cannot start once, in the error, not also as log lines", async () => {
    const cwd = await tempDir();
    const plugin = join(cwd, "crashing-plugin.mjs");
    await writeFile(plugin, '#!/usr/bin/env node\nthrow new Error("boom at start");\n', { mode: 0o755 });
    const result = await runCli(["--no-embedded", "plugins", "--plugin", plugin], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^stowage: the plugins could not be started: plugin .*crashing-plugin\.mjs: exited with status 1 before completing the handshake\n/);
    expect(result.stderr.split("Error: boom at start")).toHaveLength(2);
    expect(result.stderr).not.toMatch(/"@message"/);
  }, 30_000);

  it("refuses a plugin whose descriptors break the contract, instead of listing no plugins", async () => {
    const cwd = await tempDir();
    const plugin = join(cwd, "nameless-plugin.mjs");
    // A go-plugin plugin written without the SDK, announcing an empty plugin list.
    await writeFile(plugin, `#!/usr/bin/env node\nprocess.env.FIXTURE_INFO = JSON.stringify({ plugins: [] });\nawait import(${JSON.stringify(INFO_FIXTURE)});\n`, { mode: 0o755 });
    const result = await runCli(["--no-embedded", "plugins", "--plugin", plugin], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/plugin .*nameless-plugin\.mjs: its GetPluginInfo answer breaks the contract, so the host refuses it:\nstowage: - it lists no plugin; every executable serves at least one \(contract 3\.1\.3\)/);
  }, 30_000);
});
