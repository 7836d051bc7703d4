/**
 * The packed-install test: what a third party gets from a registry. Every publishable package is
 * packed with `pnpm pack` (as `pnpm publish` would), the tarballs are installed with npm into an
 * empty project in the system's temporary directory, outside the workspace, and there:
 *
 * - `stowage new plugin` (the installed CLI) scaffolds a plugin, which follows its own printed
 *   steps (`npm install`, `npm run build`, `npm run conformance`) and passes the installed kit,
 *   and then, packaged into one executable by its `npm run package` (the installed
 *   `stowage package`), passes it again;
 * - the installed host (`PluginHost` from `@stowage/sdk/host`) loads the built plugin, one put and
 *   one get;
 * - the plain-JavaScript example (examples/plain-js-plugin: `@grpc/grpc-js` and
 *   `@grpc/proto-loader` on the .proto files the installed SDK ships) passes the installed kit;
 * - the installed CLI runs without the workspace's private packages (`@stowage/test-servers`,
 *   Azurite).
 *
 * Needs Node, pnpm (the workspace's) and npm, and the registry or npm's cache for the third-party
 * dependencies: downloads are cached in node_modules/.cache/stowage-packed-install (git-ignored)
 * and installs prefer it (`--prefer-offline`). Run `pnpm run build` first: the packages pack dist/.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const WORKSPACE = fileURLToPath(new URL("../../", import.meta.url));
const NPM_CACHE = join(WORKSPACE, "node_modules", ".cache", "stowage-packed-install");
const run = promisify(execFile);

/** The publishable packages: packages/* not marked private. */
function publishable(): { name: string; dir: string; bin: readonly string[] }[] {
  return readdirSync(join(WORKSPACE, "packages"))
    .map((dir) => join(WORKSPACE, "packages", dir))
    .filter((dir) => existsSync(join(dir, "package.json")))
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string; private?: boolean; bin?: Record<string, string> } }))
    .filter(({ manifest }) => manifest.private !== true)
    .map(({ dir, manifest }) => ({ name: manifest.name, dir, bin: Object.keys(manifest.bin ?? {}) }));
}

/** The environment of every child: the workspace's pnpm/npm settings and STOWAGE_ROOT left out, npm's cache set. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|pnpm_|STOWAGE_ROOT$|INIT_CWD$)/i.test(key)) env[key] = value;
  }
  // `stowage package` needs patchelf: the one scripts/install-packaging-tools put in .tools/.
  const patchelf = env.STOWAGE_PATCHELF ?? join(WORKSPACE, ".tools", "patchelf", "usr", "bin", "patchelf");
  return { ...env, STOWAGE_PATCHELF: patchelf, npm_config_cache: NPM_CACHE, npm_config_fund: "false", npm_config_audit: "false", npm_config_update_notifier: "false" };
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` to completion; a failure becomes a result (code, output), never a rejection. */
async function sh(command: string, args: readonly string[], cwd: string): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd, env: childEnv(), maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? failed.message };
  }
}

/** Like {@link sh}, failing with the command's output when it exits with another status than 0. */
async function ok(command: string, args: readonly string[], cwd: string): Promise<Ran> {
  const result = await sh(command, args, cwd);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} (in ${cwd}) exited with ${result.code}:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
  return result;
}

const NPM_INSTALL = ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];

describe("the published packages, installed from their tarballs into an empty project", () => {
  let temp: string;
  let project: string;
  let tarballs: Map<string, string>;
  let stowage: string;

  beforeAll(async () => {
    temp = await mkdtemp(join(tmpdir(), "stowage-packed-"));
    const packed = join(temp, "tarballs");
    await mkdir(packed);
    tarballs = new Map();
    for (const { name, dir } of publishable()) {
      const before = new Set(readdirSync(packed));
      await ok("pnpm", ["pack", "--pack-destination", packed], dir);
      const made = readdirSync(packed).filter((file) => !before.has(file));
      expect(made, name).toHaveLength(1);
      tarballs.set(name, join(packed, made[0]!));
    }
    project = join(temp, "project");
    await mkdir(project);
    writeFileSync(join(project, "package.json"), `${JSON.stringify({ name: "packed-install", version: "1.0.0", private: true, type: "module" }, null, 2)}\n`);
    // What a backup server or a plugin author installs: the SDK, the CLI (which brings the kit and the
    // local plugin), and Node's stock gRPC tools for the plain-JavaScript example. The cloud plugins
    // are packed and checked by `pnpm run check-packages`; their SDKs would only slow this test.
    const wanted = ["@stowage/sdk", "@stowage/cli", "@stowage/conformance", "@stowage/plugin-local"].map((name) => {
      const tarball = tarballs.get(name);
      if (tarball === undefined) throw new Error(`${name} was not packed: is it still publishable?`);
      return tarball;
    });
    const grpcJs = JSON.parse(readFileSync(join(WORKSPACE, "examples/plain-js-plugin/package.json"), "utf8")) as { dependencies: Record<string, string> };
    await ok("npm", [...NPM_INSTALL, ...wanted, `@grpc/grpc-js@${grpcJs.dependencies["@grpc/grpc-js"]}`, `@grpc/proto-loader@${grpcJs.dependencies["@grpc/proto-loader"]}`], project);
    stowage = join(project, "node_modules", ".bin", "stowage");
  });

  afterAll(async () => {
    if (temp !== undefined) await rm(temp, { recursive: true, force: true });
  });

  it("packs every publishable package, and none of them depends on a private workspace package", () => {
    const names = [...tarballs.keys()].sort();
    expect(names).toEqual(expect.arrayContaining(["@stowage/cli", "@stowage/conformance", "@stowage/plugin-local", "@stowage/sdk"]));
    const privateNames = readdirSync(join(WORKSPACE, "packages"))
      .map((dir) => join(WORKSPACE, "packages", dir, "package.json"))
      .filter((path) => existsSync(path))
      .map((path) => JSON.parse(readFileSync(path, "utf8")) as { name: string; private?: boolean })
      .filter((manifest) => manifest.private === true)
      .map((manifest) => manifest.name);
    for (const name of names) {
      const installed = join(project, "node_modules", name, "package.json");
      if (!existsSync(installed)) continue;
      const manifest = JSON.parse(readFileSync(installed, "utf8")) as { dependencies?: Record<string, string> };
      for (const dependency of Object.keys(manifest.dependencies ?? {})) expect(privateNames, `${name} depends on ${dependency}`).not.toContain(dependency);
    }
  });

  it("the installed CLI runs without the workspace's private @stowage/test-servers (nor Azurite), and says so for demo --provider aws", async () => {
    expect(existsSync(join(project, "node_modules", "@stowage", "test-servers"))).toBe(false);
    expect(existsSync(join(project, "node_modules", "azurite"))).toBe(false);
    const version = await ok(stowage, ["--version"], project);
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(join(project, "node_modules/@stowage/cli/package.json"), "utf8")) as { version: string }).version);
    const demo = await sh(stowage, ["demo", "--provider", "aws", "--size", "1"], project);
    expect(demo.code).toBe(1);
    expect(demo.stderr).toContain('demo failed at "start MinIO"');
    expect(demo.stderr).toContain("only a Stowage source checkout has");
  });

  it("the SDK ships the contract's .proto files, with go-plugin's, health's and google.rpc's, under @stowage/sdk/proto/*", async () => {
    const script = [
      "const files = ['stowage/v1/object_store.proto', 'stowage/v1/block_store.proto', 'stowage/v1/plugin_info.proto', 'stowage/v1/errors.proto',",
      "  'plugin/grpc_controller.proto', 'plugin/grpc_stdio.proto', 'grpc/health/v1/health.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'];",
      "const { existsSync } = await import('node:fs');",
      "for (const f of files) if (!existsSync(new URL(import.meta.resolve('@stowage/sdk/proto/' + f)))) throw new Error('missing ' + f);",
      "console.log('ok', files.length);",
    ].join("\n");
    const result = await ok(process.execPath, ["--input-type=module", "-e", script], project);
    expect(result.stdout.trim()).toBe("ok 9");
  });

  it("each installed plugin names its executable: a bin entry, and the ./main export resolves to it without loading it", async () => {
    const script = [
      "const { existsSync, realpathSync } = await import('node:fs');",
      "const { fileURLToPath } = await import('node:url');",
      "const main = realpathSync(fileURLToPath(import.meta.resolve('@stowage/plugin-local/main')));",
      "const bin = realpathSync('node_modules/.bin/stowage-plugin-local');",
      "console.log(JSON.stringify({ exists: existsSync(main), same: main === bin }));",
    ].join("\n");
    const result = await ok(process.execPath, ["--input-type=module", "-e", script], project);
    expect(JSON.parse(result.stdout.trim())).toEqual({ exists: true, same: true });
  });

  let pluginMain: string | undefined;

  it("scaffolds a plugin with the installed `stowage new plugin`, which installs, builds and passes the installed kit by its own printed steps", async () => {
    const created = await ok(stowage, ["new", "plugin", "example.com/packed", "--dir", "plugin"], project);
    expect(created.stdout).toContain("npm install");
    const plugin = join(project, "plugin");
    const manifest = JSON.parse(readFileSync(join(plugin, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string>; overrides?: Record<string, string> };
    // The scaffold points at the tarballs this CLI was installed from, not at an unpublished version.
    expect(manifest.dependencies["@stowage/sdk"]).toBe(`file:${tarballs.get("@stowage/sdk")}`);
    expect(manifest.devDependencies["@stowage/cli"]).toBe(`file:${tarballs.get("@stowage/cli")}`);
    expect(manifest.overrides?.["@stowage/conformance"]).toBe(`file:${tarballs.get("@stowage/conformance")}`);
    await ok("npm", NPM_INSTALL, plugin);
    await ok("npm", ["run", "build"], plugin);
    const certified = await sh("npm", ["run", "conformance"], plugin);
    expect(certified.code, `${certified.stdout.slice(-6000)}\n${certified.stderr.slice(-3000)}`).toBe(0);
    expect(certified.stdout).toMatch(/\d+ passed, 0 failed, \d+ skipped/);
    pluginMain = join(plugin, "dist", "main.js");
  });

  it("packages the scaffolded plugin into one executable with its own `npm run package`, and the installed kit certifies that executable", async () => {
    if (pluginMain === undefined) throw new Error("the scaffolded plugin was not built (see the test before)");
    const plugin = join(project, "plugin");
    await ok("npm", ["run", "package"], plugin);
    const executable = join(plugin, "dist-exe", "stowage-plugin-packed", "stowage-plugin-packed");
    expect(existsSync(executable), executable).toBe(true);
    const certified = await sh(stowage, ["conformance", "--config", "conformance.yaml", "--", executable], plugin);
    expect(certified.code, `${certified.stdout.slice(-6000)}\n${certified.stderr.slice(-3000)}`).toBe(0);
    expect(certified.stdout).toMatch(/\d+ passed, 0 failed, \d+ skipped/);
  });

  it("loads the scaffolded plugin with the installed host (PluginHost from @stowage/sdk/host): one put, one get", async () => {
    if (pluginMain === undefined) throw new Error("the scaffolded plugin was not built (see the test before)");
    const script = `
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
const host = new PluginHost({ plugins: [nodePluginCommand(${JSON.stringify(pluginMain)})] });
await host.start();
try {
  const store = host.objectStore("example.com/packed");
  await store.init({ buckets: "conformance" });
  const put = await store.putObject({ bucket: "conformance", key: "packed/hello.txt", body: Readable.from([Buffer.from("hello from a packed install")]) });
  const { body } = await store.getObject({ bucket: "conformance", key: "packed/hello.txt" });
  console.log(JSON.stringify({ size: put.size, text: await text(body) }));
} finally {
  await host.close();
}
`;
    writeFileSync(join(project, "host.mjs"), script);
    const result = await ok(process.execPath, ["host.mjs"], project);
    expect(JSON.parse(result.stdout.trim().split("\n").at(-1)!)).toEqual({ size: 27, text: "hello from a packed install" });
  });

  it("certifies the plain-JavaScript example (only @grpc/grpc-js and @grpc/proto-loader on the SDK's shipped protos) with the installed kit", async () => {
    const example = join(project, "plain-js-plugin");
    cpSync(join(WORKSPACE, "examples/plain-js-plugin/plugin.mjs"), join(example, "plugin.mjs"));
    cpSync(join(WORKSPACE, "examples/plain-js-plugin/conformance.yaml"), join(example, "conformance.yaml"));
    const certified = await sh(stowage, ["conformance", "--config", "conformance.yaml", "--", process.execPath, "plugin.mjs"], example);
    expect(certified.code, `${certified.stdout.slice(-6000)}\n${certified.stderr.slice(-3000)}`).toBe(0);
    expect(certified.stdout).toMatch(/\d+ passed, 0 failed, \d+ skipped/);
    expect(certified.stdout).toMatch(/OS-RANGED-READ\s+MUST.*pass/);
  });
});
