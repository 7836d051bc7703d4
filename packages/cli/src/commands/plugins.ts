/**
 * `stowage plugins`: starts the plugin host and lists every plugin it can hand out.
 *
 * @packageDocumentation
 */
import type { HostedPlugin } from "@stowage/sdk/host";
import type { Command } from "commander";
import { embeddedPluginPath, globalOptions, withHost } from "../host-options.js";
import { printJson, printTable } from "../output.js";

/** One plugin as `stowage plugins --json` prints it. */
export interface PluginReport {
  readonly name: string;
  readonly kind: string;
  readonly description: string;
  readonly capabilities: readonly string[];
  readonly configKeys: readonly { name: string; description: string; required: boolean; secret: boolean }[];
  /** The executable (for the embedded plugin: its script). */
  readonly executable: string;
  /** Whether this is the embedded local plugin. */
  readonly embedded: boolean;
  readonly runtime: string;
  readonly pid: number | undefined;
}

function report(plugin: HostedPlugin, embedded: boolean): PluginReport {
  const isEmbedded = embedded && plugin.command === process.execPath;
  return {
    name: plugin.descriptor.name,
    kind: plugin.descriptor.kind,
    description: plugin.descriptor.description,
    capabilities: plugin.descriptor.capabilities,
    configKeys: plugin.descriptor.configKeys.map((k) => ({
      name: k.name,
      description: k.description ?? "",
      required: k.required ?? false,
      secret: k.secret ?? false,
    })),
    executable: isEmbedded ? embeddedPluginPath() : plugin.command,
    embedded: isEmbedded,
    runtime: plugin.runtime,
    pid: plugin.pid,
  };
}

/** Registers `stowage plugins` on `program`. */
export function registerPluginsCommand(program: Command): void {
  program
    .command("plugins")
    .description("start the plugin host and list the plugins it serves")
    .action(async (_options: unknown, command: Command) => {
      const globals = globalOptions(command);
      const plugins = await withHost(globals, async (host) => host.plugins().map((p) => report(p, globals.embedded)));
      if (globals.json) {
        printJson({ plugins });
        return;
      }
      if (plugins.length === 0) {
        process.stderr.write("no plugins found\n");
        return;
      }
      printTable(
        [{ title: "name" }, { title: "kind" }, { title: "capabilities" }, { title: "executable" }, { title: "runtime" }],
        plugins.map((p) => [p.name, p.kind, p.capabilities.join(",") || "-", p.embedded ? `${p.executable} (embedded)` : p.executable, p.runtime]),
      );
    });
}
