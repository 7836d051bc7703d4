// After `tsc -b`: gives every package's `bin` targets an execute bit (tsc writes 0644), so that
// plugin executables can be discovered in a plugin directory and run directly.
import { chmodSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

for (const dir of readdirSync("packages")) {
  const manifestPath = join("packages", dir, "package.json");
  if (!existsSync(manifestPath)) continue;
  const { bin } = JSON.parse(readFileSync(manifestPath, "utf8"));
  const targets = typeof bin === "string" ? [bin] : Object.values(bin ?? {});
  for (const target of targets) {
    const path = join("packages", dir, target);
    if (existsSync(path)) chmodSync(path, 0o755);
  }
}
