import { constants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The folder that `scripts/install-test-servers` installs into: `<repo>/.tools`, found relative to
 * this package (the same from `src/` and from `dist/`), unless the environment variable
 * `STOWAGE_TOOLS_DIR` names another one.
 *
 * @returns An absolute path; the folder may not exist yet.
 */
export function toolsDir(): string {
  const fromEnv = process.env.STOWAGE_TOOLS_DIR;
  if (fromEnv !== undefined && fromEnv !== "") return path.resolve(fromEnv);
  return fileURLToPath(new URL("../../../.tools", import.meta.url));
}

/**
 * Checks that an executable exists, and throws an error naming the install command otherwise.
 *
 * @param file - Absolute path of the executable.
 * @param what - Human name of the server, for the message.
 * @param installArg - The argument to `scripts/install-test-servers` that installs it.
 * @internal
 */
export async function requireExecutable(file: string, what: string, installArg: string): Promise<void> {
  try {
    await access(file, constants.X_OK);
  } catch {
    throw new Error(
      `${what} is not installed: ${file} is missing or not executable. ` +
        `Install it with: bash scripts/install-test-servers ${installArg}` +
        ` (or set STOWAGE_TOOLS_DIR to a folder that has it).`,
    );
  }
}
