/**
 * Configuration helpers shared by both stores.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { isNotFound } from "./fs.js";

/** An `INVALID_CONFIG` error about one key. */
export function invalidConfig(key: string, message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key }, cause });
}

/**
 * Resolves the `root` setting to an absolute path and checks that it names an existing
 * directory; otherwise fails with `INVALID_CONFIG` saying what is wrong.
 */
export async function requireRootDirectory(root: string): Promise<string> {
  const path = resolve(root);
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    if (isNotFound(error)) throw invalidConfig("root", `root directory ${JSON.stringify(path)} does not exist; create it or fix "root"`, error);
    throw invalidConfig("root", `root directory ${JSON.stringify(path)} cannot be used: ${String(error)}`, error);
  }
  if (!isDirectory) throw invalidConfig("root", `root ${JSON.stringify(path)} is not a directory; fix "root"`);
  return path;
}
