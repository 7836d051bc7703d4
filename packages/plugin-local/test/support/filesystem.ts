/**
 * Test helpers: a byte-for-byte picture of a directory
 * tree (to prove that an operation left it untouched), mounting inside a test when the sandbox
 * allows it, and a free port.
 *
 * @packageDocumentation
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, readFile, readdir, readlink } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Every entry under `dir` (not following links): its type, mode, size, modification time and, for
 * files, the SHA-256 of the content; for links, the target. Equal pictures mean nothing under
 * `dir` was created, removed, written or touched.
 */
export async function pictureOf(dir: string): Promise<Record<string, string>> {
  const picture: Record<string, string> = {};
  const visit = async (path: string, relative: string): Promise<void> => {
    const stats = await lstat(path);
    let detail = `mode=${stats.mode.toString(8)} mtime=${String(stats.mtimeMs)}`;
    if (stats.isSymbolicLink()) detail += ` link=${await readlink(path)}`;
    else if (stats.isFile()) detail += ` size=${String(stats.size)} sha256=${createHash("sha256").update(await readFile(path)).digest("hex")}`;
    picture[relative === "" ? "." : relative] = detail;
    if (stats.isDirectory()) {
      for (const name of (await readdir(path)).sort()) await visit(join(path, name), relative === "" ? name : `${relative}/${name}`);
    }
  };
  await visit(dir, "");
  return picture;
}

/**
 * Runs `mount` with `args`; returns `undefined` when it worked, else why not (to skip a test with
 * a reason rather than fail where the sandbox forbids mounting).
 */
export async function tryMount(args: readonly string[]): Promise<string | undefined> {
  try {
    await run("mount", [...args]);
    return undefined;
  } catch (error) {
    return `mount ${args.join(" ")} is refused here (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`;
  }
}

/** Unmounts `path` (lazily, so an open descriptor cannot keep it). */
export async function unmount(path: string): Promise<void> {
  await run("umount", ["-l", path]);
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
