/**
 * Bundling a Node entry point and everything it imports into one ES module with esbuild, ready to be
 * embedded in a single executable: no file of the bundle is read from disk at run time.
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import { build } from "esbuild";
import { Code, StowageError } from "@stowage/sdk";

/** A bundled entry point. */
export interface Bundle {
  /** The ES module's source text. */
  readonly source: string;
  /** The Node flags the entry's shebang line names (`#!/usr/bin/env -S node --max-semi-space-size=1`). */
  readonly nodeFlags: readonly string[];
}

/**
 * CommonJS's names for "the file of this module". In a single executable there is no such file:
 * they name the executable instead (see {@link BUNDLE_BANNER}), as `import.meta.url` does there.
 */
const DEFINES: Readonly<Record<string, string>> = {
  __filename: "__stowageFilename",
  __dirname: "__stowageDirname",
};

/**
 * The bundle's first lines: a `require` for the CommonJS dependencies' calls of Node's built-in
 * modules (esbuild's ES-module output forwards them to it), and the module-file names of
 * {@link DEFINES}, all pointing at the executable.
 */
const BUNDLE_BANNER = [
  'import { createRequire as __stowageCreateRequire } from "node:module";',
  'import { dirname as __stowageDirnameOf } from "node:path";',
  "const require = __stowageCreateRequire(process.execPath);",
  "const __stowageFilename = process.execPath;",
  "const __stowageDirname = __stowageDirnameOf(process.execPath);",
].join("\n");

/** The Node flags of a shebang line: the words after `node` that start with `--`. */
export function shebangNodeFlags(text: string): string[] {
  const first = text.startsWith("#!") ? (text.split("\n", 1)[0] ?? "").slice(2) : "";
  const words = first.trim().split(/\s+/);
  const node = words.findIndex((w) => w === "node" || w.endsWith("/node"));
  return node < 0 ? [] : words.slice(node + 1).filter((w) => w.startsWith("--"));
}

/**
 * Bundles `entry` (a built JavaScript file, for example a plugin's `dist/main.js`) into one ES module.
 * Top-level `await` is kept: the bundle is loaded as a module. Imports of the `external` packages
 * stay imports, resolved at run time (in a single executable they fail as not found, so only
 * optional imports belong there: a package's devDependencies, for example).
 *
 * @throws StowageError `FAILED_PRECONDITION` when esbuild cannot resolve or parse an import; the
 * message lists esbuild's errors.
 */
export async function bundleEntry(entry: string, external: readonly string[] = []): Promise<Bundle> {
  const nodeFlags = shebangNodeFlags(await readFile(entry, "utf8"));
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    platform: "node",
    format: "esm",
    target: "node22",
    // Whitespace and syntax only: class and function names stay, so error names and stack traces read as in the sources.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "eof",
    charset: "utf8",
    define: DEFINES,
    external: [...external],
    banner: { js: BUNDLE_BANNER },
    logLevel: "silent",
  }).catch((error: unknown) => {
    const errors = (error as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors ?? [];
    const lines = errors.map((e) => (e.location ? `${e.location.file}:${String(e.location.line)}: ${e.text}` : e.text));
    throw new StowageError(Code.FailedPrecondition, `esbuild could not bundle ${entry}: ${lines.join("; ") || String(error)}; build the package first and install its dependencies`, { cause: error });
  });
  const output = result.outputFiles[0];
  if (output === undefined) throw new StowageError(Code.Internal, `esbuild wrote no output for ${entry}`);
  // The entry's own shebang line stays in the output; a module loaded from memory must not start with one.
  return { source: output.text.replace(/^#!.*\n/, ""), nodeFlags };
}
