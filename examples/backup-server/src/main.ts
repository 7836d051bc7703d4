#!/usr/bin/env node
/**
 * `example-backup-server`: the backup server's command line.
 *
 * ```sh
 * example-backup-server --plugins ./plugins --locations locations.yaml backup primary b1 ./data
 * example-backup-server --plugins ./plugins --locations locations.yaml list primary
 * example-backup-server --plugins ./plugins --locations locations.yaml restore primary b1 ./restored
 * example-backup-server --plugins ./plugins --locations locations.yaml delete primary b1
 * ```
 *
 * @packageDocumentation
 */
import { parseArgs } from "node:util";
import { createHclogLogger } from "@stowage/sdk";
import { BackupServer } from "./backup-server.js";
import { loadLocations } from "./locations.js";

const USAGE = "usage: example-backup-server --plugins DIR --locations FILE (backup LOCATION NAME DIR | list LOCATION | restore LOCATION NAME DIR | delete LOCATION NAME)";

const { values, positionals } = parseArgs({ options: { plugins: { type: "string" }, locations: { type: "string" } }, allowPositionals: true });
const [command, location, name, dir] = positionals;
if (values.plugins === undefined || values.locations === undefined || location === undefined) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const server = await BackupServer.start({
  pluginDir: values.plugins,
  locations: await loadLocations(values.locations),
  logger: createHclogLogger({ level: "warn", module: "backup-server" }),
});
try {
  if (command === "backup" && name !== undefined && dir !== undefined) {
    const record = await server.backup(location, name, dir);
    const kept = record.retainUntil === undefined ? "" : `, protected until ${record.retainUntil}`;
    process.stdout.write(`backed up ${dir} as ${record.name}: ${String(record.size)} bytes, sha256 ${record.sha256}${kept}\n`);
  } else if (command === "list") {
    for (const record of await server.list(location)) process.stdout.write(`${record.name}\t${String(record.size)}\t${record.createdAt}\n`);
  } else if (command === "delete" && name !== undefined) {
    await server.delete(location, name);
    process.stdout.write(`deleted ${name}\n`);
  } else if (command === "restore" && name !== undefined && dir !== undefined) {
    const record = await server.restore(location, name, dir);
    process.stdout.write(`restored ${record.name} into ${dir}: ${String(record.size)} bytes verified\n`);
  } else {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = 2;
  }
} catch (error) {
  process.stderr.write(`example-backup-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await server.close();
}
