#!/usr/bin/env node
// Generates, from the config schemas (`defineConfig` of @stowage/sdk/plugin and the kit's zod
// schema), the parts of the docs that describe configuration keys:
//
// - every block of a Markdown file between
//     <!-- config-keys: <package> <EXPORT> -->
//     <!-- /config-keys -->
//   becomes the `docsTable()` of that package's exported schema;
// - packages/conformance/conformance.schema.json, the JSON Schema of conformance.yaml.
//
// Usage: node scripts/config-docs.mjs          rewrite the files
//        node scripts/config-docs.mjs --check  exit 1 when a file differs from what the schemas give
//
// Reads the packages' dist/ (run `pnpm run build` first).
import { readFile, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
const MARKER = /<!-- config-keys: (@stowage\/[a-z0-9-]+) ([A-Z0-9_]+) -->\n[\s\S]*?<!-- \/config-keys -->/g;

async function loadPackage(name) {
  const dir = join(root, "packages", name.replace("@stowage/", ""));
  const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
  const entry = manifest.exports?.["."]?.default ?? manifest.main;
  return import(pathToFileURL(join(dir, entry)).href);
}

const modules = new Map();
async function schemaOf(pkg, name) {
  if (!modules.has(pkg)) modules.set(pkg, await loadPackage(pkg));
  const schema = modules.get(pkg)[name];
  if (typeof schema?.docsTable !== "function") throw new Error(`${pkg} exports no config schema named ${name}`);
  return schema;
}

const files = execFileSync("git", ["ls-files", "*.md"], { cwd: root, encoding: "utf8" }).split("\n").filter((f) => f !== "" && !f.startsWith("third_party/"));
const outputs = [];
for (const file of files) {
  const path = join(root, file);
  const text = await readFile(path, "utf8");
  if (!text.includes("<!-- config-keys: ")) continue;
  let result = text;
  for (const match of [...text.matchAll(MARKER)]) {
    const [block, pkg, name] = match;
    const schema = await schemaOf(pkg, name);
    result = result.replace(block, `<!-- config-keys: ${pkg} ${name} -->\n${schema.docsTable()}\n<!-- /config-keys -->`);
  }
  outputs.push({ path, text, result });
}

const kit = await loadPackage("@stowage/conformance");
const schemaPath = join(root, "packages/conformance/conformance.schema.json");
const schemaText = `${JSON.stringify(kit.conformanceJsonSchema(), null, 2)}\n`;
outputs.push({ path: schemaPath, text: await readFile(schemaPath, "utf8").catch(() => ""), result: schemaText });

const drifted = outputs.filter((o) => o.text !== o.result);
if (check) {
  if (drifted.length > 0) {
    console.error(`config docs are out of date in: ${drifted.map((o) => relative(root, o.path)).join(", ")}`);
    console.error("they are generated from the config schemas: run `node scripts/config-docs.mjs` and commit the result");
    process.exit(1);
  }
  console.log(`config docs: ${String(outputs.length)} files match the schemas`);
} else {
  for (const o of drifted) await writeFile(o.path, o.result);
  console.log(`config docs: ${String(drifted.length)} of ${String(outputs.length)} files rewritten`);
}
