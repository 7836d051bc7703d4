#!/usr/bin/env node
// Builds the single executables of the workspace with `stowage package` (the built CLI), one
// directory per executable under .build/sea/<bin>/: the five plugins, the example plugin, the
// example backup server and the stowage CLI itself. Run `pnpm run build` first; `pnpm run package`
// (scripts/package) installs patchelf and then runs this.
//
// Usage: node scripts/package.mjs [--only <bin>[,<bin>…]]
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The packages whose executables ship as single files, in build order. */
export const TARGETS = [
  "packages/plugin-local",
  "packages/plugin-aws",
  "packages/plugin-ibm-cos",
  "packages/plugin-azure",
  "packages/plugin-gcp",
  "examples/memory-plugin",
  "examples/backup-server",
  "packages/cli",
];
export const OUT = join(ROOT, ".build", "sea");

const { values } = parseArgs({ options: { only: { type: "string" } } });
const only = values.only === undefined ? undefined : new Set(values.only.split(","));
const run = promisify(execFile);
const cli = join(ROOT, "packages/cli/dist/main.js");
let failed = 0;
for (const target of TARGETS) {
  const manifest = JSON.parse(readFileSync(join(ROOT, target, "package.json"), "utf8"));
  for (const bin of Object.keys(manifest.bin ?? {})) {
    if (only !== undefined && !only.has(bin)) continue;
    const started = process.hrtime.bigint();
    try {
      const { stdout } = await run(process.execPath, [cli, "--json", "package", join(ROOT, target), "--bin", bin, "--out", join(OUT, bin)], { maxBuffer: 1 << 24 });
      const built = JSON.parse(stdout);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      console.log(`${bin}: ${(built.size / 2 ** 20).toFixed(1)} MiB, sha256 ${built.sha256.slice(0, 16)}…, ${seconds.toFixed(1)} s`);
    } catch (error) {
      failed++;
      console.error(`${bin}: FAILED: ${error.stderr || error.message}`);
    }
  }
}
process.exitCode = failed === 0 ? 0 : 1;
