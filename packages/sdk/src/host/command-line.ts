/**
 * How a plugin executable is given (`PluginCommand`) and how its command line is named in errors and log lines. A command that runs an interpreter on
 * a script (`python3 -u plugin.py`, `node --flag main.mjs`, `deno run -A main.ts`) is named after
 * the script, not the interpreter: "plugin python3" says nothing about which plugin failed.
 */
import { basename } from "node:path";

/** How to start a plugin executable. */
export interface PluginCommand {
  /** Path of the executable. */
  readonly command: string;
  /** Extra arguments. */
  readonly args?: readonly string[] | undefined;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Name used in logs (default: the executable's file name, or the script's for `node script`). */
  readonly label?: string | undefined;
  /**
   * The protocol the executable speaks, by the name of a protocol adapter of the SDK: `stowage`
   * (default) or another one docs/architecture.md lists, for example the adapter for unmodified
   * plugin binaries of another backup server. An unknown name fails the launch.
   */
  readonly protocol?: string | undefined;
}

interface Interpreter {
  /** Subcommands that come before the script (`deno run main.ts`, `bun run main.ts`). */
  readonly subcommands: readonly string[];
  /** Options that take the next argument as their value (`node -r ./hook.js main.js`). */
  readonly valued: readonly string[];
  /** Options after which no script follows (`python -c code`, `node -e code`); `-m` names a module. */
  readonly inline: readonly string[];
}

const NODE: Interpreter = {
  subcommands: [],
  valued: ["-r", "--require", "--import", "--loader", "--experimental-loader", "-C", "--conditions", "--env-file", "--title", "--input-type"],
  inline: ["-e", "--eval", "-p", "--print"],
};

const INTERPRETERS: readonly { readonly pattern: RegExp; readonly interpreter: Interpreter }[] = [
  { pattern: /^(node|nodejs)(\.exe)?$/, interpreter: NODE },
  { pattern: /^bun(\.exe)?$/, interpreter: { ...NODE, subcommands: ["run"] } },
  { pattern: /^deno(\.exe)?$/, interpreter: { subcommands: ["run"], valued: ["--config", "-c", "--import-map", "--location", "--seed", "--v8-flags", "--env-file"], inline: ["eval"] } },
  { pattern: /^(python|pypy)(\d+(\.\d+)?)?(\.exe)?$/, interpreter: { subcommands: [], valued: ["-W", "-X", "--check-hash-based-pycs"], inline: ["-c"] } },
  { pattern: /^ruby(\d+(\.\d+)?)?(\.exe)?$/, interpreter: { subcommands: [], valued: ["-I", "-r", "-C", "-E", "--encoding"], inline: ["-e"] } },
];

/**
 * The script an interpreter command runs (for `python -m pkg.plugin`, the module name), or
 * undefined when the command is not a known interpreter or names no script.
 */
export function scriptOf(command: PluginCommand): string | undefined {
  const exe = basename(command.command);
  const interpreter = INTERPRETERS.find((i) => i.pattern.test(exe))?.interpreter;
  if (interpreter === undefined) return undefined;
  const args = command.args ?? [];
  let subcommandSeen = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") return args[i + 1];
    if (interpreter.inline.includes(arg)) return undefined;
    if (arg === "-m") return args[i + 1];
    if (interpreter.valued.includes(arg)) {
      i += 1;
      continue;
    }
    if (arg.startsWith("-")) continue;
    if (!subcommandSeen && interpreter.subcommands.includes(arg)) {
      subcommandSeen = true;
      continue;
    }
    return arg;
  }
  return undefined;
}

/** The name a command is logged under: its `label`, else the script's or the executable's file name. */
export function commandLabel(command: PluginCommand): string {
  if (command.label !== undefined) return command.label;
  return basename(scriptOf(command) ?? command.command);
}

/** How errors name a command: the script an interpreter runs, else the executable's path. */
export function commandName(command: PluginCommand): string {
  return scriptOf(command) ?? command.command;
}
