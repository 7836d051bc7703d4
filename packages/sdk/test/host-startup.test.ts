/**
 * The host enforces the contract on the executables it loads (contract 3.1 to 3.3), says precisely
 * why one cannot start, names interpreter-run plugins by their script, prints a start-up failure
 * once, and checks an advertised data channel at start, falling back to gRPC messages rather than
 * failing every put. Real plugin processes throughout.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { Code } from "../src/errors.js";
import { PluginHost, type PluginCommand, type PluginHostOptions } from "../src/host.js";
import { commandLabel, commandName, scriptOf } from "../src/host/command-line.js";
import { capturingLogger, memoryFixture } from "./support/host.js";
import { rejection } from "../src/testing.js";

const infoFixture = fileURLToPath(new URL("./fixtures/info-plugin.mjs", import.meta.url));
const OBJECT_STORE = 1;
const BLOCK_STORE = 2;

let hosts: PluginHost[] = [];

afterEach(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  hosts = [];
});

async function start(plugins: PluginCommand[], options: PluginHostOptions = {}): Promise<PluginHost> {
  const h = new PluginHost({ plugins, logger: capturingLogger().logger, ...options });
  hosts.push(h);
  await h.start();
  return h;
}

function announcing(info: Record<string, unknown>): PluginCommand {
  return { command: process.execPath, args: [infoFixture], env: { FIXTURE_INFO: JSON.stringify(info) } };
}

describe("GetPluginInfo is checked (contract 3.1)", () => {
  it.each([
    ["a name without a domain", [{ name: "pyfs", kind: OBJECT_STORE }], /plugin name "pyfs" must look like <domain>\/<name>.*\(contract 3\.1\.7, 3\.2\)/],
    ["a name with upper case", [{ name: "Example.org/pyfs", kind: OBJECT_STORE }], /plugin name "Example\.org\/pyfs" is invalid: the part before "\/" must be a lower-case DNS subdomain.*\(contract 3\.1\.7, 3\.2\)/],
    ["a name with spaces", [{ name: "a b/c d", kind: OBJECT_STORE }], /plugin name "a b\/c d" is invalid.*\(contract 3\.1\.7, 3\.2\)/],
    ["no plugin at all", [], /it lists no plugin; every executable serves at least one \(contract 3\.1\.3\)/],
    ["kind UNSPECIFIED", [{ name: "example.com/x", kind: 0 }], /plugin "example\.com\/x" has kind PLUGIN_KIND_UNSPECIFIED.*\(contract 3\.1\.8, 3\.3\)/],
    ["a descriptor listed twice", [{ name: "example.com/x", kind: OBJECT_STORE }, { name: "example.com/x", kind: OBJECT_STORE }], /it lists the object-store plugin "example\.com\/x" twice; \(kind, name\) must be unique within one executable \(contract 3\.1\.9\)/],
  ])("refuses %s, naming the executable and the rule", async (_name, plugins, rule) => {
    const error = await rejection(start([announcing({ plugins })]));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain(`plugin ${infoFixture}: its GetPluginInfo answer breaks the contract, so the host refuses it:`);
    expect(error.rawMessage).toMatch(rule);
    expect(error.rawMessage).not.toMatch(/served by both/);
  }, 30_000);

  it("accepts one name for both kinds, and ignores a kind from a newer contract with a warning", async () => {
    const { logger, lines } = capturingLogger();
    const h = await start([announcing({ plugins: [{ name: "example.com/x", kind: OBJECT_STORE }, { name: "example.com/x", kind: BLOCK_STORE }, { name: "example.com/future", kind: 7 }] })], { logger });
    expect(h.plugins().map((p) => `${p.descriptor.kind}:${p.descriptor.name}`)).toEqual(["block-store:example.com/x", "object-store:example.com/x"]);
    expect(lines.some((l) => l.msg === "ignoring a plugin of a kind this host does not know (a newer contract's)" && l.plugin === "example.com/future")).toBe(true);
  }, 30_000);

  it("reports one executable given twice as such, not as two executables serving one plugin", async () => {
    const command = { command: process.execPath, args: [memoryFixture] };
    const error = await rejection(start([command, command]));
    expect(error.rawMessage).toBe(`plugin ${memoryFixture} is given twice (in the plugin directory or the plugins list); list each executable once`);
  }, 30_000);
});

describe("start-up failures are diagnosed precisely and printed once", () => {
  it("a plugin that understood the cookie and exited 1 for a reason of its own is not called cookie-less", async () => {
    const error = await rejection(start([{ command: process.execPath, args: [memoryFixture], env: { FIXTURE_MODE: "exit-one" } }]));
    expect(error.rawMessage).toMatch(/exited with status 1 before completing the handshake\nIts stderr said:\nfixture: cannot read \/etc\/fixture\.conf/);
    expect(error.rawMessage).not.toMatch(/cookie/);
  }, 30_000);

  it("a plugin that exits 1 without a word may lack the cookie, and the message says so as a possibility", async () => {
    const error = await rejection(start([{ command: process.execPath, args: ["-e", "process.exit(1)"] }]));
    expect(error.rawMessage).toMatch(/exited with status 1 before completing the handshake without saying why; a go-plugin binary does this when it lacks the magic cookie it expects, so it may not be a Stowage plugin/);
  }, 30_000);

  it("the stderr of a plugin that fails to start is quoted in the error, not logged as well", async () => {
    const { logger, lines } = capturingLogger();
    const error = await rejection(start([{ command: process.execPath, args: [memoryFixture], env: { FIXTURE_MODE: "exit-early" } }], { logger }));
    expect(error.rawMessage).toMatch(/Its stderr said:\nfixture: failing at start on purpose/);
    const echoed = lines.filter((l) => l.msg === "fixture: failing at start on purpose");
    expect(echoed.map((l) => l.level)).toEqual([20]);
  }, 30_000);

  it("the stderr of a plugin that starts is logged at its levels", async () => {
    const { logger, lines } = capturingLogger();
    await start([{ command: process.execPath, args: [memoryFixture], env: { FIXTURE_MODE: "chatty" } }], { logger });
    expect(lines.filter((l) => l.msg === "fixture: starting with a warning").map((l) => [l.level, l.plugin])).toEqual([[40, "memory-plugin.mjs"]]);
  }, 30_000);

  it("an interpreter-run plugin is named by its script in errors and log lines", async () => {
    const { logger, lines } = capturingLogger();
    const error = await rejection(start([{ command: process.execPath, args: ["--no-warnings", "--max-semi-space-size=1", memoryFixture], env: { FIXTURE_MODE: "exit-early" } }], { logger }));
    expect(error.rawMessage.startsWith(`plugin ${memoryFixture}: exited with status 3`)).toBe(true);
    expect(lines.find((l) => l.msg === "fixture: failing at start on purpose")?.plugin).toBe("memory-plugin.mjs");
  }, 30_000);

  it.each([
    [{ command: "python3", args: ["-u", "plugin.py"] }, "plugin.py", "plugin.py"],
    [{ command: "/usr/bin/python", args: ["/opt/p/plugin.py", "--verbose"] }, "/opt/p/plugin.py", "plugin.py"],
    [{ command: "python3.12", args: ["-W", "ignore", "-m", "acme.plugin"] }, "acme.plugin", "acme.plugin"],
    [{ command: "python3", args: ["-c", "print(1)"] }, "python3", "python3"],
    [{ command: "node", args: ["--flag", "script.mjs"] }, "script.mjs", "script.mjs"],
    [{ command: "node", args: ["-r", "./hook.cjs", "/srv/main.js"] }, "/srv/main.js", "main.js"],
    [{ command: "/usr/local/bin/bun", args: ["run", "src/main.ts"] }, "src/main.ts", "main.ts"],
    [{ command: "deno", args: ["run", "--allow-all", "main.ts"] }, "main.ts", "main.ts"],
    [{ command: "ruby", args: ["-I", "lib", "bin/plugin.rb"] }, "bin/plugin.rb", "plugin.rb"],
    [{ command: "/plugins/s3-plugin", args: ["--log-level", "debug"] }, "/plugins/s3-plugin", "s3-plugin"],
    [{ command: "node", args: ["script.mjs"], label: "custom" }, "script.mjs", "custom"],
  ])("names %j as %s (logged as %s)", (command, name, label) => {
    expect(commandName(command)).toBe(name);
    expect(commandLabel(command)).toBe(label);
    expect(scriptOf({ command: "/plugins/s3-plugin" })).toBeUndefined();
  });
});

describe("the data channel is checked at start", () => {
  it.each([
    ["a path that does not exist", "unix:/nonexistent/stowage-data.sock", /no such file/],
    ["an address that is not unix:", "tcp:127.0.0.1:1", /does not start with "unix:"/],
    ["a file that is not a socket", "unix:FILE", /is not a Unix socket/],
  ])("%s: a warning, and puts and gets work over gRPC messages", async (_name, address, problem) => {
    const file = join(mkdtempSync(join(tmpdir(), "stowage-dc-")), "not-a-socket");
    writeFileSync(file, "");
    const { logger, lines } = capturingLogger();
    const h = await start([announcing({ plugins: [{ name: "fixture.stowage.io/memory", kind: OBJECT_STORE }], dataChannelAddress: address.replace("FILE", file) })], { logger });
    const warning = lines.find((l) => typeof l.msg === "string" && l.msg.includes("advertises a data channel that cannot be used"));
    expect(warning?.level).toBe(40);
    expect(String(warning?.msg)).toMatch(problem);
    const store = h.objectStore("fixture.stowage.io/memory");
    await store.init({ buckets: "b" });
    for (let i = 0; i < 3; i++) await store.putObject({ bucket: "b", key: `k${String(i)}`, body: Readable.from([Buffer.from("hello")]) });
    expect(Buffer.concat(await (await store.getObject({ bucket: "b", key: "k2" })).body.toArray()).toString()).toBe("hello");
  }, 30_000);

  it("a socket file that nobody listens on: a warning, and puts work over gRPC messages", async () => {
    // A socket file left behind by a process that was killed: it exists, but refuses connections.
    const path = join(mkdtempSync(join(tmpdir(), "stowage-dc-")), "stale.sock");
    const owner = spawn(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.stdout.write("listening\\n"))`], { stdio: ["ignore", "pipe", "ignore"] });
    await once(owner.stdout, "data");
    owner.kill("SIGKILL");
    await once(owner, "exit");
    expect(existsSync(path)).toBe(true);
    const { logger, lines } = capturingLogger();
    const h = await start([announcing({ plugins: [{ name: "fixture.stowage.io/memory", kind: OBJECT_STORE }], dataChannelAddress: `unix:${path}` })], { logger });
    expect(lines.find((l) => typeof l.msg === "string" && l.msg.includes("advertises a data channel that cannot be used"))?.msg).toMatch(/connecting to .*stale\.sock failed: connect ECONNREFUSED/);
    const store = h.objectStore("fixture.stowage.io/memory");
    await store.init({ buckets: "b" });
    expect((await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("hello")]) })).size).toBe(5);
  }, 30_000);

  it("a data channel that goes away later: one warning, and every put and get still works", async () => {
    const { logger, lines } = capturingLogger();
    const h = await start([announcing({ plugins: [{ name: "fixture.stowage.io/memory", kind: OBJECT_STORE }], dataChannel: "vanishing" })], { logger });
    expect(lines.some((l) => typeof l.msg === "string" && l.msg.includes("advertises a data channel"))).toBe(false);
    const store = h.objectStore("fixture.stowage.io/memory");
    await store.init({ buckets: "b" });
    for (let i = 0; i < 3; i++) await store.putObject({ bucket: "b", key: `k${String(i)}`, body: Readable.from([Buffer.from("hello")]) });
    expect(Buffer.concat(await (await store.getObject({ bucket: "b", key: "k0" })).body.toArray()).toString()).toBe("hello");
    const warnings = lines.filter((l) => typeof l.msg === "string" && l.msg.includes("its object bodies travel in gRPC messages from now on"));
    expect(warnings).toHaveLength(1);
  }, 30_000);
});
