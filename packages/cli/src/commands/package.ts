/**
 * `stowage package`: turns a built plugin package (or any package with a Node `bin`) into a single
 * executable that runs without Node, with the C++ runtime libraries it needs in `lib/` beside it.
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { usageError } from "../exit.js";
import { globalOptions } from "../host-options.js";
import { collect } from "../parse.js";
import { MIB, printJson, printLines } from "../output.js";
import { packageExecutable, type PackagedExecutable } from "../package/single-executable.js";

interface PackageCommandOptions {
  readonly bin?: string;
  readonly out?: string;
  readonly nodeFlag?: readonly string[];
}

/** The executables a package's manifest declares: `bin` name to file, relative to the package. */
function binEntries(manifest: { name?: unknown; bin?: unknown }): Map<string, string> {
  const { bin, name } = manifest;
  if (typeof bin === "string" && typeof name === "string") return new Map([[name.replace(/^@[^/]+\//, ""), bin]]);
  if (typeof bin !== "object" || bin === null) return new Map();
  return new Map(Object.entries(bin as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string"));
}

/**
 * Packages the `bin` of the package in `dir`. Its devDependencies stay out of the bundle.
 *
 * @returns The executable built.
 */
export async function packagePackage(dir: string, options: PackageCommandOptions): Promise<PackagedExecutable> {
  const manifestPath = join(dir, "package.json");
  const manifest = JSON.parse(await readFile(manifestPath, "utf8").catch(() => {
    throw usageError(`${manifestPath} does not exist: give the directory of a package (default: the current one)`);
  })) as { name?: unknown; bin?: unknown; devDependencies?: Record<string, unknown> };
  const bins = binEntries(manifest);
  const name = options.bin ?? (bins.size === 1 ? [...bins.keys()][0] : undefined);
  if (name === undefined) {
    throw usageError(bins.size === 0 ? `${manifestPath} declares no bin to package` : `${manifestPath} declares several bins (${[...bins.keys()].join(", ")}); choose one with --bin`);
  }
  const entry = bins.get(name);
  if (entry === undefined) throw usageError(`${manifestPath} declares no bin named ${name} (it has: ${[...bins.keys()].join(", ") || "none"})`);
  const entryPath = resolve(dir, entry);
  await readFile(entryPath).catch(() => {
    throw usageError(`${entryPath} does not exist: build the package first (npm run build)`);
  });
  // Development dependencies are not there at run time; a package imports them only optionally.
  const external = Object.keys(manifest.devDependencies ?? {});
  return packageExecutable({ entry: entryPath, name, outDir: resolve(options.out ?? join(dir, "dist-exe", name)), nodeFlags: options.nodeFlag, external });
}

/** Registers `stowage package` on `program`. */
export function registerPackageCommand(program: Command): void {
  program
    .command("package")
    .description("build a package's executable (its bin) into one file that runs without Node; needs patchelf")
    .argument("[dir]", "the package's directory", ".")
    .option("--bin <name>", "which of the package's bins (needed when it has several)")
    .option("--out <dir>", "output directory, replaced as a whole (default: <dir>/dist-exe/<bin>)")
    .option("--node-flag <flag>", "extra Node flag the executable starts with (repeatable)", collect)
    .addHelpText(
      "after",
      `
The output directory holds the executable and, in lib/, the libraries it needs beyond glibc
(libstdc++, libgcc_s) as non-executable files; copy the directory as a whole. The Node that runs
this command is the one inside the executable.`,
    )
    .action(async (dir: string, options: PackageCommandOptions, command: Command) => {
      const globals = globalOptions(command);
      const built = await packagePackage(resolve(dir), options);
      if (globals.json) {
        printJson(built);
        return;
      }
      printLines(
        `packaged ${built.path}: ${(built.size / MIB).toFixed(1)} MiB, Node ${built.nodeVersion}, sha256 ${built.sha256}`,
        `  beside it in lib/: ${built.libraries.join(", ") || "nothing"}; starts with ${built.nodeFlags.join(" ")}`,
      );
    });
}
