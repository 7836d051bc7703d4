#!/usr/bin/env node
/**
 * `example-backup-server`: the backup server's command line.
 *
 * ```sh
 * example-backup-server --plugins ./plugins --locations locations.yaml backup primary b1 ./data
 * example-backup-server --plugins ./plugins --locations locations.yaml list primary
 * example-backup-server --plugins ./plugins --locations locations.yaml restore primary b1 ./restored
 * example-backup-server --plugins ./plugins --locations locations.yaml delete primary b1
 * example-backup-server --plugins ./plugins --locations locations.yaml --metrics-port 9464 serve
 * ```
 *
 * `--metrics-port PORT` serves the host's metrics for Prometheus on `127.0.0.1:PORT/metrics` while
 * the command runs (0: a free port, printed on stderr); `serve` keeps the locations open and the
 * endpoint up until SIGTERM or SIGINT.
 *
 * @packageDocumentation
 */
import { parseArgs } from "node:util";
import { createHclogLogger } from "@stowage/sdk";
import { BackupServer } from "./backup-server.js";
import { loadLocations } from "./locations.js";

const USAGE =
  "usage: example-backup-server --plugins DIR --locations FILE [--metrics-port PORT] (backup LOCATION NAME DIR | list LOCATION | restore LOCATION NAME DIR | delete LOCATION NAME | serve)";

const { values, positionals } = parseArgs({ options: { plugins: { type: "string" }, locations: { type: "string" }, "metrics-port": { type: "string" } }, allowPositionals: true });
const [command, location, name, dir] = positionals;
const metricsPort = values["metrics-port"] === undefined ? undefined : Number(values["metrics-port"]);
if (values.plugins === undefined || values.locations === undefined || (location === undefined && command !== "serve") || (metricsPort !== undefined && !/^\d+$/.test(values["metrics-port"] ?? ""))) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const server = await BackupServer.start({
  pluginDir: values.plugins,
  locations: await loadLocations(values.locations),
  logger: createHclogLogger({ level: "warn", module: "backup-server" }),
  metricsPort,
});
if (server.metricsUrl !== undefined) process.stderr.write(`metrics: ${server.metricsUrl}\n`);
try {
  if (command === "serve") {
    process.stdout.write(`serving ${String(server.locations().length)} locations; stop with SIGTERM\n`);
    await new Promise<void>((resolve) => {
      process.once("SIGTERM", resolve);
      process.once("SIGINT", resolve);
    });
  } else if (location === undefined) {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = 2;
  } else if (command === "backup" && name !== undefined && dir !== undefined) {
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
