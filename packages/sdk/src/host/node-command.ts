import type { PluginCommand } from "./command-line.js";

/**
 * V8 options for processes that stream large bodies. A 1 MiB young generation makes V8 scavenge
 * often, which frees the backing stores of short-lived Buffers promptly: on the machines we
 * measured, this both lowered the peak RSS of a 1 GiB transfer by 30–60 MB and raised throughput
 * (docs/benchmarks.md). The flag only works at start-up, so it belongs on the command line.
 */
export const STREAMING_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/**
 * The command that runs a plugin written for Node (a `.js`/`.mjs` file serving with `serve()`)
 * with this Node binary and {@link STREAMING_NODE_FLAGS}.
 *
 * @example
 * ```ts
 * new PluginHost({ plugins: [nodePluginCommand("/opt/plugins/my-plugin/dist/main.js")] });
 * ```
 */
export function nodePluginCommand(
  script: string,
  options: { readonly args?: readonly string[]; readonly env?: Readonly<Record<string, string>>; readonly label?: string } = {},
): PluginCommand {
  return {
    command: process.execPath,
    args: [...STREAMING_NODE_FLAGS, script, ...(options.args ?? [])],
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.label === undefined ? {} : { label: options.label }),
  };
}
