/**
 * The `stowage` command tree: global options and every sub-command, wired with commander.
 *
 * @packageDocumentation
 */
import { Command, CommanderError, Option } from "commander";
import { registerConformanceCommand } from "./commands/conformance.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerNewCommand } from "./commands/new-plugin.js";
import { registerObjectCommands } from "./commands/object.js";
import { registerPackageCommand } from "./commands/package.js";
import { registerPluginsCommand } from "./commands/plugins.js";
import { registerSnapshotCommands } from "./commands/snapshot.js";
import { EXIT_USAGE } from "./exit.js";
import { collect } from "./parse.js";

import { VERSION } from "./version.js";

export { VERSION };

/** Makes `command` and its sub-commands report usage errors as `stowage: …` and throw instead of exiting. */
function configure(command: Command): void {
  command
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({ outputError: (text, write) => write(`stowage: ${text.replace(/^error: /, "")}`) });
  for (const sub of command.commands) configure(sub);
}

/** Builds the `stowage` program. Parse it with `parseAsync`; see {@link exitCodeOfCommanderError}. */
export function createProgram(): Command {
  const program = new Command("stowage")
    .description("Stowage: storage plugins for Kubernetes backup servers. Lists plugins, moves objects, manages snapshots, checks plugins against the contract, scaffolds new ones, and runs a demo.")
    .version(VERSION)
    .option("--plugin-dir <dir>", "directory searched for plugin executables")
    .option("--plugin <path>", "extra plugin executable (repeatable)", collect)
    .option("--no-embedded", "do not launch the embedded local plugin (stowage.io/local)")
    .addOption(new Option("--log-level <level>", "level of host and plugin logs on stderr").choices(["trace", "debug", "info", "warn", "error"]).default("warn"))
    .option("--json", "print one JSON document on stdout instead of text")
    .option("--metrics-port <port>", "serve the host's metrics for Prometheus on http://127.0.0.1:<port>/metrics while the command runs (0: a free port; the URL is printed on stderr)")
    .addHelpText(
      "after",
      `
Examples:
  stowage demo                                  guided tour: put/get/list/sign an object, snapshot and restore a volume
  stowage plugins                               list the plugins the host serves
  stowage object put backups db.dump ./db.dump  upload a file (local plugin, root $STOWAGE_ROOT or ./.stowage-data)
  stowage object ls backups --json              list objects as JSON
  stowage snapshot create vol-1 --wait          snapshot a volume and wait until it is ready
  stowage conformance                           run the conformance kit against the embedded local plugin
  stowage conformance --config c.yaml -- ./p    run it against a plugin executable
  stowage new plugin example.com/memory         scaffold a plugin package that passes the kit
  stowage package ./my-plugin                   build a plugin into one executable that runs without Node
  stowage --metrics-port 9464 object url backups db.dump --hold
                                                serve a signed URL and the host's metrics (RPC durations, bytes, errors, plugin restarts) until Ctrl-C`,
    );
  registerPluginsCommand(program);
  registerObjectCommands(program);
  registerSnapshotCommands(program);
  registerDemoCommand(program);
  registerConformanceCommand(program);
  registerNewCommand(program);
  registerPackageCommand(program);
  configure(program);
  return program;
}

/**
 * The exit status for an error commander threw: 0 after `--help` or `--version`, 2 for usage
 * errors, including a missing sub-command (commander has already printed the message or help).
 */
export function exitCodeOfCommanderError(error: CommanderError): number {
  return error.exitCode === 0 ? 0 : EXIT_USAGE;
}
