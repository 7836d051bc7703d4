/**
 * Building a single executable from a Node entry point: the entry bundled into one ES module
 * (esbuild), embedded with a small loader into a copy of this process's Node binary as a Node
 * single executable application (SEA blob injected by postject), the binary's library path set to
 * `$ORIGIN/lib` (patchelf) and the C++ runtime libraries it needs copied into `lib/` beside it, not
 * executable. The result runs where glibc is the only library the system offers.
 *
 * @packageDocumentation
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { isSea } from "node:sea";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code, StowageError } from "@stowage/sdk";
import { bundleEntry } from "./bundle.js";
import { findPatchelf, runtimeLibraries } from "./runtime-libs.js";

const run = promisify(execFile);

/**
 * The fuse Node's single-executable support looks for (Node's documented postject sentinel). Built
 * at run time: written out whole, it would appear twice in a single-executable `stowage`, and
 * postject refuses a binary with two.
 */
const SEA_FUSE = ["NODE_SEA_FUSE", "fce680ab2cc467b6e072b8b5df1996b2"].join("_");

/** Where the executable finds its libraries: `lib/` beside it. */
export const LIBRARY_DIR = "lib";

/** Node flags every single executable gets: the loader uses module hooks, which warn as experimental. */
const BASE_FLAGS = ["--disable-warning=ExperimentalWarning"] as const;

/** The asset name of the bundled module inside the executable. */
const MAIN_ASSET = "main.mjs";

/**
 * The executable's first script (CommonJS, as Node's single executables require): it loads the
 * bundled ES module from the embedded asset through module hooks, under the executable's own
 * `file:` URL, so `import.meta.url` and stack traces name the executable.
 */
const LOADER = `"use strict";
const { getAsset } = require("node:sea");
const { registerHooks } = require("node:module");
const { pathToFileURL } = require("node:url");
const { Script, constants } = require("node:vm");
const url = pathToFileURL(process.execPath).href;
let source = getAsset(${JSON.stringify(MAIN_ASSET)}, "utf8");
registerHooks({
  resolve: (specifier, context, next) => (specifier === url ? { url, format: "module", shortCircuit: true } : next(specifier, context)),
  load: (target, context, next) => {
    if (target !== url || source === undefined) return next(target, context);
    const text = source;
    source = undefined;
    return { format: "module", source: text, shortCircuit: true };
  },
});
const load = new Script("(specifier) => import(specifier)", { importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER }).runInThisContext();
load(url).catch((error) => process.nextTick(() => { throw error; }));
`;

/** What {@link packageExecutable} builds. */
export interface PackageOptions {
  /** The built JavaScript entry point (for a plugin: the file its `bin` names). */
  readonly entry: string;
  /** The executable's file name. */
  readonly name: string;
  /** The directory to write: `<outDir>/<name>` and `<outDir>/lib/…`. Replaced as a whole. */
  readonly outDir: string;
  /** Node flags beyond those of the entry's shebang line. */
  readonly nodeFlags?: readonly string[] | undefined;
  /** Packages left out of the bundle, imported at run time (see {@link bundleEntry}). */
  readonly external?: readonly string[] | undefined;
  /** Environment for finding patchelf (`STOWAGE_PATCHELF`, `PATH`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** A built single executable. */
export interface PackagedExecutable {
  /** The executable's path. */
  readonly path: string;
  /** Its size in bytes. */
  readonly size: number;
  /** SHA-256 of the executable, hex. */
  readonly sha256: string;
  /** The libraries shipped in `lib/` (sonames). */
  readonly libraries: readonly string[];
  /** The Node flags the executable starts with. */
  readonly nodeFlags: readonly string[];
  /** The Node version inside it. */
  readonly nodeVersion: string;
}

async function sha256File(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

/** Runs a tool, turning a failure into a typed error that carries its output. */
async function tool(file: string, args: readonly string[], what: string, cwd?: string): Promise<void> {
  try {
    await run(file, [...args], { maxBuffer: 16 * 1024 * 1024, cwd });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    const output = `${stderr ?? ""}${stdout ?? ""}`.trim().split("\n").slice(-10).join("\n");
    throw new StowageError(Code.Internal, `${what} failed: ${output || String(error)}`, { cause: error });
  }
}

/** postject's command line, run in its own process (it prints LIEF's warnings while it works). */
function postjectCli(): string {
  return join(dirname(fileURLToPath(import.meta.resolve("postject"))), "cli.js");
}

/**
 * Refuses to replace `outDir` unless it is missing or holds only what a build writes there: the
 * executable `name` and `lib/` with libraries. A mistaken `--out` (the package itself, a home
 * directory) must never be deleted.
 */
async function checkReplaceable(outDir: string, name: string): Promise<void> {
  const entries = await readdir(outDir, { withFileTypes: true }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  });
  if (entries === undefined) return;
  const foreign = entries.filter((e) => !(e.name === name && e.isFile()) && !(e.name === LIBRARY_DIR && e.isDirectory())).map((e) => e.name);
  if (entries.some((e) => e.name === LIBRARY_DIR && e.isDirectory())) {
    const libraries = await readdir(join(outDir, LIBRARY_DIR), { withFileTypes: true });
    foreign.push(...libraries.filter((e) => !(e.isFile() && /\.so(?:\.\d+)*$/.test(e.name))).map((e) => `${LIBRARY_DIR}/${e.name}`));
  }
  if (foreign.length > 0) {
    throw new StowageError(Code.InvalidArgument, `${outDir} holds files a build did not write (${foreign.slice(0, 5).join(", ")}); the output directory is replaced as a whole, so give an empty or new one`);
  }
}

/**
 * Builds one single executable from `options.entry` into `options.outDir`, replacing that
 * directory (only when it is missing or holds a previous build). Two builds from the same inputs with the same Node binary are byte-identical.
 *
 * @throws StowageError `FAILED_PRECONDITION` when this process is itself a single executable,
 * patchelf is missing or the entry does not bundle; `INVALID_ARGUMENT` when `outDir` holds other
 * files; `INTERNAL` when a tool fails.
 */
export async function packageExecutable(options: PackageOptions): Promise<PackagedExecutable> {
  if (isSea()) throw new StowageError(Code.FailedPrecondition, "stowage package must run on Node (the Node binary is the executable's runtime), not from a single executable");
  if (basename(options.name) !== options.name || options.name === "" || options.name === LIBRARY_DIR) {
    throw new StowageError(Code.InvalidArgument, `the executable's name must be a plain file name other than "${LIBRARY_DIR}"; got ${JSON.stringify(options.name)}`);
  }
  await checkReplaceable(options.outDir, options.name);
  const patchelf = await findPatchelf(options.env);
  const bundle = await bundleEntry(options.entry, options.external);
  const nodeFlags = [...bundle.nodeFlags, ...(options.nodeFlags ?? []), ...BASE_FLAGS];
  const libraries = await runtimeLibraries(patchelf, process.execPath);
  const work = await mkdtemp(join(tmpdir(), "stowage-package-"));
  const staging = `${options.outDir}.partial-${String(process.pid)}`;
  try {
    await writeFile(join(work, MAIN_ASSET), bundle.source);
    await writeFile(join(work, "loader.cjs"), LOADER);
    // Paths relative to the work directory: the blob records the main script's path, and a
    // temporary directory's name in it would make two builds differ.
    const config = {
      main: "loader.cjs",
      output: "sea.blob",
      disableExperimentalSEAWarning: true,
      useCodeCache: false,
      useSnapshot: false,
      execArgv: nodeFlags,
      assets: { [MAIN_ASSET]: MAIN_ASSET },
    };
    await writeFile(join(work, "sea.json"), JSON.stringify(config));
    await tool(process.execPath, ["--experimental-sea-config", "sea.json"], "node --experimental-sea-config", work);
    // The executable is made in place in the staging directory, which then replaces the output.
    await rm(staging, { recursive: true, force: true });
    await mkdir(join(staging, LIBRARY_DIR), { recursive: true, mode: 0o755 });
    const binary = join(staging, options.name);
    await copyFile(process.execPath, binary);
    await chmod(binary, 0o755);
    await tool(process.execPath, [postjectCli(), binary, "NODE_SEA_BLOB", join(work, config.output), "--sentinel-fuse", SEA_FUSE], "postject");
    // After the injection: patchelf first would have its dynamic section rewritten by postject.
    if (libraries.length > 0) await tool(patchelf, ["--set-rpath", `$ORIGIN/${LIBRARY_DIR}`, binary], "patchelf --set-rpath");
    for (const library of libraries) {
      const target = join(staging, LIBRARY_DIR, library.soname);
      await copyFile(library.source, target);
      await chmod(target, 0o644);
    }
    await rm(options.outDir, { recursive: true, force: true });
    await rename(staging, options.outDir);
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(staging, { recursive: true, force: true });
  }
  const path = join(options.outDir, options.name);
  return {
    path,
    size: (await stat(path)).size,
    sha256: await sha256File(path),
    libraries: libraries.map((l) => l.soname),
    nodeFlags,
    nodeVersion: process.version,
  };
}
