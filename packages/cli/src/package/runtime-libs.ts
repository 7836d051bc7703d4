/**
 * The shared libraries a Node binary needs beyond glibc (libstdc++ and libgcc_s for the official
 * builds), and patchelf, the tool that edits where the binary looks for them.
 *
 * @packageDocumentation
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { basename, delimiter, join } from "node:path";
import { promisify } from "node:util";
import { Code, StowageError } from "@stowage/sdk";

const run = promisify(execFile);

/**
 * Sonames glibc provides itself: every system a plugin runs on has these (Velero's server image
 * does), so they are never shipped.
 */
const GLIBC = /^(?:libc|libm|libdl|libpthread|librt|libresolv|libutil|libanl|libmvec|libnsl|libBrokenLocale)\.so\.\d+$|^ld-linux(?:-[\w-]+)?\.so\.\d+$/;

/** Whether `soname` is one of glibc's own libraries. */
export function isGlibcLibrary(soname: string): boolean {
  return GLIBC.test(soname);
}

/**
 * Finds patchelf: `STOWAGE_PATCHELF`, else `patchelf` on `PATH`.
 *
 * @throws StowageError `FAILED_PRECONDITION` naming how to install it.
 */
export async function findPatchelf(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const candidates = env.STOWAGE_PATCHELF ? [env.STOWAGE_PATCHELF] : (env.PATH ?? "").split(delimiter).filter((d) => d !== "").map((d) => join(d, "patchelf"));
  for (const candidate of candidates) {
    const ok = await run(candidate, ["--version"]).then(() => true, () => false);
    if (ok) return candidate;
  }
  throw new StowageError(Code.FailedPrecondition, "patchelf was not found: install it (apt-get install patchelf) or set STOWAGE_PATCHELF to its path");
}

/** The sonames an ELF file needs (`DT_NEEDED`), read with patchelf. */
export async function neededLibraries(patchelf: string, file: string): Promise<string[]> {
  const { stdout } = await run(patchelf, ["--print-needed", file]);
  return stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

/** The files of the shared libraries this process has loaded, from `/proc/self/maps`. */
async function loadedLibraries(): Promise<string[]> {
  const maps = await readFile("/proc/self/maps", "utf8");
  const paths = new Set<string>();
  for (const line of maps.split("\n")) {
    const path = line.slice(line.indexOf("/"));
    if (line.includes("/") && /\.so(?:\.|$)/.test(basename(path))) paths.add(path);
  }
  return [...paths];
}

/** A library to ship beside the executable. */
export interface RuntimeLibrary {
  /** The name the executable asks for, and the name of the shipped file. */
  readonly soname: string;
  /** The file this process loaded it from. */
  readonly source: string;
}

/**
 * The libraries `binary` (this process's own Node binary) needs outside glibc, with those they
 * need in turn, each taken from the file this very process loaded, so the versions are the ones
 * known to work with it.
 *
 * @throws StowageError `FAILED_PRECONDITION` when a needed library is not loaded in this process.
 */
export async function runtimeLibraries(patchelf: string, binary: string): Promise<RuntimeLibrary[]> {
  const loaded = await loadedLibraries();
  const found = new Map<string, RuntimeLibrary>();
  const pending = (await neededLibraries(patchelf, binary)).filter((s) => !isGlibcLibrary(s));
  for (let soname = pending.shift(); soname !== undefined; soname = pending.shift()) {
    if (found.has(soname)) continue;
    const source = loaded.find((path) => basename(path) === soname) ?? loaded.find((path) => basename(path).startsWith(`${soname}.`));
    if (source === undefined) {
      throw new StowageError(Code.FailedPrecondition, `${binary} needs ${soname}, which this Node process has not loaded; package with the Node binary that runs this command`);
    }
    found.set(soname, { soname, source });
    for (const next of await neededLibraries(patchelf, source)) if (!isGlibcLibrary(next) && !found.has(next)) pending.push(next);
  }
  return [...found.values()].sort((a, b) => a.soname.localeCompare(b.soname));
}
