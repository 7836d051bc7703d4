/**
 * `stowage new plugin <name>`: scaffolds a plugin package — package.json, tsconfig, an in-memory
 * ObjectStore served with `@stowage/sdk/plugin`, a conformance configuration and a README — that
 * builds and passes the conformance kit as it is, ready to have its storage replaced.
 *
 * @packageDocumentation
 */
import { readFileSync, realpathSync } from "node:fs";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { isPluginName } from "@stowage/sdk";
import type { Command } from "commander";
import { usageError } from "../exit.js";
import { globalOptions } from "../host-options.js";
import { printJson, printLines } from "../output.js";
import { VERSION } from "../version.js";
import { SCAFFOLD_STORE_TS } from "./scaffold-store.js";

interface NewPluginOptions {
  readonly dir?: string;
  readonly sdk?: string;
  readonly cli?: string;
}

const SHORT_NAME = /^[a-z0-9][-a-z0-9_.]*$/;

/** The directory of an installed `@stowage/*` package this CLI resolves, or undefined. */
function packageDir(specifier: string): string | undefined {
  try {
    // The entry point is <package>/dist/index.js (or main.js); the package is two levels up.
    return realpathSync(dirname(dirname(fileURLToPath(import.meta.resolve(specifier)))));
  } catch {
    return undefined;
  }
}

/** The `@stowage/*` packages a project installed from files (tarballs or folders), by name: `file:` specs with absolute paths. */
type FileInstalls = Readonly<Record<string, string>>;

/**
 * The `@stowage/*` packages that the npm project holding `dir` (a package under its
 * `node_modules`) installed from files, read from the project's lockfile (`package-lock.json`,
 * else npm's hidden `node_modules/.package-lock.json`), with their `file:` paths made absolute.
 * Empty when `dir` is not under `node_modules` or nothing was installed from a file.
 */
function fileInstalls(dir: string): FileInstalls {
  const at = dir.lastIndexOf(`${sep}node_modules${sep}`);
  if (at < 0) return {};
  const project = dir.slice(0, at);
  for (const lockfile of [join(project, "package-lock.json"), join(project, "node_modules", ".package-lock.json")]) {
    let packages: Record<string, { resolved?: unknown }>;
    try {
      packages = (JSON.parse(readFileSync(lockfile, "utf8")) as { packages?: Record<string, { resolved?: unknown }> }).packages ?? {};
    } catch {
      continue;
    }
    const found: Record<string, string> = {};
    for (const [path, entry] of Object.entries(packages)) {
      const name = /^node_modules\/(@stowage\/[^/]+)$/.exec(path)?.[1];
      if (name !== undefined && typeof entry.resolved === "string" && entry.resolved.startsWith("file:")) {
        found[name] = `file:${resolve(project, entry.resolved.slice("file:".length))}`;
      }
    }
    return found;
  }
  return {};
}

/**
 * The dependency spec for a Stowage package in the scaffold: `file:` to the package this CLI runs
 * with when that is a source checkout (not under node_modules); the tarball (or folder) it was
 * installed from when npm installed it from a file, as `npm install ./stowage-cli-0.1.0.tgz` does;
 * else this CLI's version, for a registry.
 */
function defaultSpec(specifier: string, installs: FileInstalls): string {
  const dir = packageDir(specifier);
  if (dir !== undefined && !dir.split(/[\\/]/).includes("node_modules")) return `file:${dir}`;
  return installs[specifier] ?? `^${VERSION}`;
}

/**
 * The scaffold's npm `overrides`: every `@stowage/*` package this CLI's project installed from a
 * file, so that the CLI's own Stowage dependencies (the kit, the local plugin) come from the same
 * files rather than from a registry that may not serve them; a direct dependency is referred to
 * as `$<name>`, as npm requires.
 */
function scaffoldOverrides(installs: FileInstalls, direct: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(installs).map(([name, spec]) => [name, direct.includes(name) ? `$${name}` : spec]));
}

/** Files of the scaffold, by relative path. */
export function scaffoldFiles(pluginName: string, packageName: string, sdkSpec: string, cliSpec: string, overrides: Readonly<Record<string, string>> = {}): Record<string, string> {
  const short = pluginName.slice(pluginName.indexOf("/") + 1);
  return {
    "package.json": `${JSON.stringify(
      {
        name: packageName,
        version: "0.1.0",
        private: true,
        description: `Stowage storage plugin ${pluginName}`,
        type: "module",
        engines: { node: ">=22" },
        bin: { [packageName.replace(/^@[^/]+\//, "")]: "./dist/main.js" },
        scripts: {
          build: "tsc && node -e \"require('node:fs').chmodSync('dist/main.js', 0o755)\"",
          conformance: "stowage conformance --config conformance.yaml -- node dist/main.js",
          package: "stowage package",
        },
        dependencies: { "@stowage/sdk": sdkSpec },
        devDependencies: { "@stowage/cli": cliSpec, "@types/node": "^24.19.2", typescript: "~6.0.3" },
        ...(Object.keys(overrides).length === 0 ? {} : { overrides }),
      },
      null,
      2,
    )}\n`,
    "tsconfig.json": `${JSON.stringify(
      {
        compilerOptions: {
          target: "ES2024",
          lib: ["ES2024"],
          module: "nodenext",
          moduleResolution: "nodenext",
          types: ["node"],
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          noImplicitOverride: true,
          verbatimModuleSyntax: true,
          skipLibCheck: true,
          sourceMap: true,
          rootDir: "src",
          outDir: "dist",
        },
        include: ["src"],
      },
      null,
      2,
    )}\n`,
    ".gitignore": "node_modules/\ndist/\ndist-exe/\nconformance-report/\n",
    "conformance.yaml": `# Configuration of the Stowage conformance kit for ${pluginName} (see docs/conformance.md).
# Run it with: npm run build && npm run conformance
objectStore:
  plugin: ${pluginName}
  # The Init configuration: every key must be one the plugin declares.
  config:
    buckets: conformance
  # The bucket the kit writes into, under stowage-conformance-<run>/.
  bucket: conformance
  # Size of the large streamed object (64MiB, 1GiB; a bare number is MiB).
  largeObjectSize: 64MiB
`,
    "src/main.ts": `#!/usr/bin/env node
/**
 * The plugin executable: serves the ObjectStore ${pluginName} to a Stowage host (or Velero,
 * through an adapter) over the plugin protocol. Started by the host, never by hand.
 */
import { defineObjectStore, serve } from "@stowage/sdk/plugin";
import { CONFIG_KEYS, MemoryStore } from "./store.js";

await serve({
  plugins: [
    defineObjectStore({
      name: ${JSON.stringify(pluginName)},
      description: "Keeps objects in the plugin process's memory (a starting point: replace the storage).",
      capabilities: ["RANGED_READS", "OBJECT_METADATA"],
      configKeys: CONFIG_KEYS,
      create: ({ logger }) => new MemoryStore(logger),
    }),
  ],
});
`,
    "src/store.ts": SCAFFOLD_STORE_TS,
    "README.md": `# ${packageName}

A Stowage storage plugin: the ObjectStore \`${pluginName}\`, scaffolded by \`stowage new plugin\`.
It keeps objects in memory — a complete, conformant starting point whose storage you replace.

## Build and check

\`\`\`sh
npm install
npm run build            # tsc into dist/, dist/main.js is the plugin executable
npm run conformance      # stowage conformance --config conformance.yaml -- node dist/main.js
\`\`\`

The conformance kit starts the plugin through the real Stowage host and checks it clause by
clause against the contract; it ends with \`N passed, N failed, N skipped\` and exits with 0 when
every MUST case passes. \`--run 'OS-LIST-*'\` runs a subset, \`--report-dir out\` writes JSON lines
and JUnit XML.

## Where things are

- \`src/main.ts\`: the executable — \`serve()\` from \`@stowage/sdk/plugin\` speaks the process
  protocol (handshake, health, shutdown, logging) and the gRPC services; you only implement the
  \`ObjectStore\` interface.
- \`src/store.ts\`: the implementation. Every call receives an \`AbortSignal\`: stop work when it
  fires. Throw \`StowageError\` with the code and reason the contract names; anything else becomes
  \`INTERNAL\`.
- \`conformance.yaml\`: what the kit passes to \`Init\` and which bucket it uses.

The definition in \`src/main.ts\` announces what the store offers beyond the basics (\`capabilities\`:
ranged reads and object metadata); the kit runs the cases for each one announced. Take a capability
out if your backend lacks it (the store must then refuse a range with UNIMPLEMENTED/UNSUPPORTED,
clause 5.3.9), and add the signed-URL ones if it signs URLs.

## Use it

Put \`dist/main.js\` (executable) into a Stowage host's plugin directory, or pass it to
\`stowage --plugin dist/main.js plugins\`. It is named \`${short}\` only locally: hosts find it by its
plugin name, \`${pluginName}\`.
`,
  };
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  const info = await stat(dir).catch(() => undefined);
  if (info === undefined) return true;
  if (!info.isDirectory()) return false;
  return (await readdir(dir)).length === 0;
}

async function newPlugin(name: string, options: NewPluginOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  let pluginName = name;
  if (!isPluginName(name)) {
    if (!SHORT_NAME.test(name)) throw usageError(`${JSON.stringify(name)} is not a plugin name: use <domain>/<name>, for example example.com/memory`);
    pluginName = `example.com/${name}`;
  }
  const short = pluginName.slice(pluginName.indexOf("/") + 1).replace(/[^-a-z0-9_.]/gi, "-").toLowerCase();
  const dir = resolve(options.dir ?? short);
  if (!(await isEmptyOrMissing(dir))) throw usageError(`${dir} exists and is not empty; choose another --dir`);
  const packageName = `stowage-plugin-${short}`;
  // This file is <@stowage/cli>/dist/commands/new-plugin.js.
  const installs = fileInstalls(realpathSync(fileURLToPath(new URL("../../", import.meta.url))));
  const overrides = scaffoldOverrides(installs, ["@stowage/sdk", "@stowage/cli"]);
  const files = scaffoldFiles(pluginName, packageName, options.sdk ?? defaultSpec("@stowage/sdk", installs), options.cli ?? defaultSpec("@stowage/cli", installs), overrides);
  for (const [path, text] of Object.entries(files)) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text);
  }
  if (globals.json) {
    printJson({ plugin: pluginName, package: packageName, dir, files: Object.keys(files) });
    return;
  }
  const where = relative(process.cwd(), dir) || ".";
  printLines(
    `created ${packageName} in ${dir}: the ObjectStore ${pluginName}, in memory`,
    "",
    `  cd ${where}`,
    "  npm install",
    "  npm run build",
    "  npm run conformance",
    "",
    "Then, to ship it where no Node is installed (a Velero server image, say): npm run package",
    "(one executable in dist-exe/, with the C++ runtime beside it in lib/; needs patchelf).",
  );
  if (name !== pluginName) printLines("", `The plugin is named ${pluginName}: change it in src/main.ts and conformance.yaml to a domain you own.`);
}

/** Registers `stowage new plugin` on `program`. */
export function registerNewCommand(program: Command): void {
  const group = program.command("new").description("scaffold new things");
  group
    .command("plugin")
    .description("scaffold a plugin package that builds, serves an in-memory ObjectStore and passes the conformance kit")
    .argument("<name>", "plugin name, <domain>/<name> (for example example.com/memory)")
    .option("--dir <dir>", "directory to create (default: ./<name>)")
    .option("--sdk <spec>", "dependency spec for @stowage/sdk (default: this checkout's, the tarball this CLI was installed from, or the CLI's version)")
    .option("--cli <spec>", "dependency spec for @stowage/cli, which runs the kit (default: like --sdk)")
    .action(async (name: string, options: NewPluginOptions, command: Command) => {
      await newPlugin(name, options, command);
    });
}
