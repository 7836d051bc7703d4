import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * Lists plugin executables under `dir`, recursively: every regular file with an execute bit, in
 * sorted path order. A missing directory yields an empty list.
 */
export async function discoverExecutables(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const found: string[] = [];
  for (const entry of entries) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) continue;
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() === true && (info.mode & 0o111) !== 0) found.push(path);
  }
  return found.sort();
}
