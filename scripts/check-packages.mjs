// Checks every publishable package (packages/* not marked private) as a registry would serve it:
// publint (package.json fields, exports, files against the packed tarball) and Are the Types Wrong
// (`attw --pack`: every export resolves to JavaScript and types, ESM-only profile). Called by
// `pnpm run lint`; run after `pnpm run build`, since both look at dist/. Packages that only ship
// executables (`bin`, no importable entry point: @stowage/cli) skip attw, which checks imports.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const failed = [];
for (const dir of readdirSync(join(root, "packages")).sort()) {
  const path = join(root, "packages", dir);
  const manifestPath = join(path, "package.json");
  if (!existsSync(manifestPath)) continue;
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  if (manifest.private === true) continue;
  const importable = Object.keys(manifest.exports ?? {}).some((entry) => entry !== "./package.json");
  const checks = [["publint", "--strict"]];
  if (importable) checks.push(["attw", "--pack", ".", "--profile", "esm-only", "--format", "table-flipped"]);
  for (const [tool, ...args] of checks) {
    process.stdout.write(`== ${manifest.name}: ${tool}\n`);
    try {
      execFileSync("pnpm", ["exec", tool, ...args], { cwd: path, stdio: "inherit" });
    } catch {
      failed.push(`${manifest.name} (${tool})`);
    }
  }
}
if (failed.length > 0) {
  process.stderr.write(`check-packages: failed: ${failed.join(", ")}\n`);
  process.exit(1);
}
process.stdout.write("check-packages: every publishable package passes publint and attw\n");
