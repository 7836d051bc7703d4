#!/usr/bin/env node
// Builds the single executables of the workspace with `stowage package` (the built CLI), one
// directory per executable under .build/sea/<bin>/: the five plugins, the bridge, the example plugin, the
// example backup server and the stowage CLI itself. Run `pnpm run build` first; `pnpm run package`
// (scripts/package) installs patchelf and then runs this.
//
// Usage: node scripts/package.mjs [--only <bin>[,<bin>…]] [--force]
//
// Cached: an executable is rebuilt only when its inputs changed. The key is a SHA-256 of the Node
// binary's version, the lockfile and every built file of the workspace's packages and examples
// (dist/), kept in .build/sea/.<bin>.key beside the executable's directory (never inside it: the
// directory is what images copy). --force rebuilds all.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The packages whose executables ship as single files, in build order. */
const TARGETS = [
  "packages/plugin-local",
  "packages/plugin-aws",
  "packages/plugin-ibm-cos",
  "packages/plugin-azure",
  "packages/plugin-gcp",
  "packages/bridge",
  "examples/memory-plugin",
  "examples/backup-server",
  "packages/cli",
];
const OUT = join(ROOT, ".build", "sea");

const { values } = parseArgs({ options: { only: { type: "string" }, force: { type: "boolean" } } });
const only = values.only === undefined ? undefined : new Set(values.only.split(","));
const run = promisify(execFile);
const cli = join(ROOT, "packages/cli/dist/main.js");

/** The inputs' key: Node's version, the lockfile, and every file under the workspace's dist/ folders. */
function inputsKey() {
  const hash = createHash("sha256").update(process.version).update(readFileSync(join(ROOT, "pnpm-lock.yaml")));
  for (const group of ["packages", "examples"]) {
    for (const name of readdirSync(join(ROOT, group)).sort()) {
      const dist = join(ROOT, group, name, "dist");
      if (!existsSync(dist)) continue;
      for (const file of readdirSync(dist, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort()) {
        hash.update(file.slice(ROOT.length)).update(readFileSync(file));
      }
    }
  }
  return hash.digest("hex");
}

const key = inputsKey();
let failed = 0;
for (const target of TARGETS) {
  const manifest = JSON.parse(readFileSync(join(ROOT, target, "package.json"), "utf8"));
  for (const bin of Object.keys(manifest.bin ?? {})) {
    if (only !== undefined && !only.has(bin)) continue;
    const keyFile = join(OUT, `.${bin}.key`);
    if (!values.force && existsSync(join(OUT, bin, bin)) && existsSync(keyFile) && readFileSync(keyFile, "utf8") === key) {
      console.log(`${bin}: ok (cached)`);
      continue;
    }
    const started = process.hrtime.bigint();
    try {
      const { stdout } = await run(process.execPath, [cli, "--json", "package", join(ROOT, target), "--bin", bin, "--out", join(OUT, bin)], { maxBuffer: 1 << 24 });
      const built = JSON.parse(stdout);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      writeFileSync(keyFile, key);
      console.log(`${bin}: ${(built.size / 2 ** 20).toFixed(1)} MiB, sha256 ${built.sha256.slice(0, 16)}…, ${seconds.toFixed(1)} s`);
    } catch (error) {
      failed++;
      console.error(`${bin}: FAILED: ${error.stderr || error.message}`);
    }
  }
}
process.exitCode = failed === 0 ? 0 : 1;
