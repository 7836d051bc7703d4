/**
 * `stowage conformance`: runs the conformance kit against a plugin — one given after `--`, or one
 * the host discovers (`--plugin NAME`, the embedded local plugin by default) — through the real
 * plugin host, and exits with 0 (every MUST case passed), 1 (failures), 2 (usage or
 * configuration error) or 3 (the plugin could not start).
 *
 * @packageDocumentation
 */
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createHclogLogger, isPluginName, silentLogger, type PluginKind } from "@stowage/sdk";
import type { PluginCommand } from "@stowage/sdk/host";
import { createLocalVolume } from "@stowage/plugin-local";
import { loadConfigFile, loadKnownFailing, runConformance, sweep, type CasePatterns, type ConformanceConfig } from "@stowage/conformance";
import { Option, type Command } from "commander";
import { usageError } from "../exit.js";
import { catchInterrupts, EMBEDDED_LABEL, embeddedPluginCommand, globalOptions, type GlobalOptions } from "../host-options.js";
import { printJson } from "../output.js";
import { collect } from "../parse.js";
import { LOCAL_PLUGIN } from "../store-options.js";

interface ConformanceOptions {
  readonly kind?: PluginKind;
  readonly config?: string;
  readonly run?: readonly string[];
  readonly skip?: readonly string[];
  readonly knownFailing?: string;
  readonly reportDir?: string;
  readonly sweep?: boolean;
  readonly strict?: boolean;
}

/** A plugin name as the contract defines it (`<dns-subdomain>/<name>`), as opposed to a path. */

/** Where the plugin under test comes from. */
interface Selection {
  /** Executables the kit launches. */
  readonly plugins: PluginCommand[];
  /** Plugin directory to discover. */
  readonly pluginDir: string | undefined;
  /** The plugin name asked for with `--plugin NAME`, if any. */
  readonly pluginName: string | undefined;
  /** Whether the plugin under test is the embedded local plugin. */
  readonly embeddedLocal: boolean;
}

/**
 * Sorts out the plugin under test. After `--` comes its command line, which is then the only
 * executable launched. Otherwise the global options apply: `--plugin` values that are files are
 * extra executables, a `--plugin` value that is a plugin name (`example.com/s3`) names the plugin
 * to test, and the embedded local plugin is launched unless `--no-embedded`.
 */
async function select(operands: readonly string[], globals: GlobalOptions, rawPlugins: readonly string[]): Promise<Selection> {
  if (operands.length > 0) {
    const [command = "", ...args] = operands;
    return { plugins: [{ command, args }], pluginDir: undefined, pluginName: undefined, embeddedLocal: false };
  }
  const plugins: PluginCommand[] = [];
  let pluginName: string | undefined;
  for (const raw of rawPlugins) {
    const path = resolve(raw);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() === true) plugins.push({ command: path });
    else if (isPluginName(raw)) {
      if (pluginName !== undefined) throw usageError(`--plugin names two plugins to test, ${pluginName} and ${raw}; name one`);
      pluginName = raw;
    } else throw usageError(`--plugin ${raw} is neither a plugin executable nor a plugin name such as example.com/s3`);
  }
  if (globals.pluginDir !== undefined) {
    const info = await stat(globals.pluginDir).catch(() => undefined);
    if (info?.isDirectory() !== true) throw usageError(`--plugin-dir ${globals.pluginDir} is not a directory`);
  }
  if (globals.embedded) plugins.push(embeddedPluginCommand(globals.logLevel));
  if (plugins.length === 0 && globals.pluginDir === undefined) {
    throw usageError("nothing to test: give the plugin's command after --, or --plugin NAME with --plugin-dir (or the embedded local plugin)");
  }
  const embeddedLocal = globals.embedded && (pluginName === undefined || pluginName === LOCAL_PLUGIN) && plugins.length === 1 && globals.pluginDir === undefined;
  return { plugins, pluginDir: globals.pluginDir, pluginName, embeddedLocal };
}

/**
 * The configuration used when `--config` is left out and the embedded local plugin is under test:
 * objects and volumes in a temporary directory, with a scratch volume to snapshot.
 */
async function embeddedLocalConfig(dir: string): Promise<ConformanceConfig> {
  const objects = join(dir, "objects");
  const blocks = join(dir, "blocks");
  const volume = await createLocalVolume(blocks, { sizeBytes: 16 * 1024 * 1024, zone: "local-1", fill: 0x5a });
  const pv = (source: Record<string, unknown>): Record<string, unknown> => ({ apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "conformance-pv" }, spec: { capacity: { storage: "16Mi" }, ...source } });
  await mkdir(objects, { recursive: true });
  return {
    objectStore: { plugin: LOCAL_PLUGIN, config: { root: objects, createBuckets: "true" }, bucket: "conformance" },
    blockStore: {
      plugin: LOCAL_PLUGIN,
      config: { root: blocks },
      volumeId: volume.volumeId,
      zone: "local-1",
      volumeType: "local-ssd",
      iops: 3000,
      missingVolumeId: "vol-stowage-conformance-missing",
      missingSnapshotId: "snap-stowage-conformance-missing",
      pollInterval: "50ms",
      pvTemplates: {
        inTree: pv({ local: { path: join(blocks, "volumes", "${volumeId}.img") } }),
        csi: pv({ csi: { driver: "local.stowage.io", volumeHandle: "${volumeId}" } }),
      },
    },
  };
}

async function conformance(operands: readonly string[], options: ConformanceOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const rawPlugins = command.optsWithGlobals<{ plugin?: readonly string[] }>().plugin ?? [];
  const selection = await select(operands, globals, rawPlugins);
  // Plugin logs would interleave with the report: shown only when --log-level is given.
  const source = command.parent?.getOptionValueSource("logLevel");
  const explicitLogs = source !== undefined && source !== "default";
  const logger = explicitLogs ? createHclogLogger({ level: globals.logLevel, module: "stowage-conformance" }) : silentLogger;
  let scratch: string | undefined;
  let config: ConformanceConfig | string;
  if (options.config !== undefined) {
    config = resolve(options.config);
  } else if (selection.embeddedLocal) {
    scratch = await mkdtemp(join(tmpdir(), "stowage-conformance-"));
    config = await embeddedLocalConfig(scratch);
  } else {
    throw usageError("--config is required (it is optional only for the embedded local plugin); see docs/conformance.md for its format");
  }
  let knownFailing: CasePatterns | undefined;
  if (options.knownFailing !== undefined) {
    try {
      knownFailing = await loadKnownFailing(resolve(options.knownFailing));
    } catch (error) {
      throw usageError((error as Error).message);
    }
  }
  if (typeof config === "string") {
    try {
      await loadConfigFile(config);
    } catch (error) {
      throw usageError((error as Error).message);
    }
  }
  const interrupts = catchInterrupts();
  const target = { plugin: selection.plugins, pluginDir: selection.pluginDir, logger };
  try {
    if (options.sweep === true) {
      const outcome = await sweep({ ...target, config, kind: options.kind, pluginName: selection.pluginName, output: process.stdout });
      for (const error of outcome.errors) process.stderr.write(`stowage: ${error}\n`);
      if (globals.json) printJson(outcome);
      else process.stdout.write(`${String(outcome.removed.length)} removed, ${String(outcome.failed.length)} not removed\n`);
      process.exitCode = outcome.exitCode;
      return;
    }
    const outcome = await runConformance({
      ...target,
      config,
      kind: options.kind,
      pluginName: selection.pluginName,
      run: options.run,
      skip: options.skip,
      knownFailing,
      reportDir: options.reportDir === undefined ? undefined : resolve(options.reportDir),
      strict: options.strict,
      output: globals.json ? undefined : process.stdout,
      signal: interrupts.signal,
    });
    // Without --json the kit has already printed its errors in its report; printing them again
    // on stderr showed a plugin's start-up failure twice.
    if (globals.json) {
      printJson({ runId: outcome.runId, plugins: outcome.plugins, summary: outcome.summary, exitCode: outcome.exitCode, errors: outcome.errors, leaks: outcome.leaks, results: outcome.results });
    }
    if (interrupts.signal.aborted) throw interrupts.signal.reason as Error;
    process.exitCode = outcome.exitCode;
  } finally {
    interrupts.dispose();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
}

/** Registers `stowage conformance` on `program`. */
export function registerConformanceCommand(program: Command): void {
  program
    .command("conformance")
    .description("check, clause by clause, that a storage plugin honours the Stowage contract")
    .argument("[command...]", "the plugin's command line, after -- (default: the plugin the host discovers)")
    .addOption(new Option("--kind <kind>", "test only this kind (default: every kind the configuration has)").choices(["object-store", "block-store"]))
    .option("--config <file>", "YAML configuration: plugin config, bucket, volume (optional for the embedded local plugin)")
    .option("--run <pattern>", "run only the cases matching this pattern, e.g. OS-LIST-* (repeatable, or comma-separated)", collect)
    .option("--skip <pattern>", "leave out the cases matching this pattern (repeatable, or comma-separated)", collect)
    .option("--known-failing <file>", "cases expected to fail, one pattern per line; one that passes fails the run")
    .option("--report-dir <dir>", "write results.jsonl and junit.xml here")
    .option("--strict", "fail the run on SHOULD-level failures too")
    .option("--sweep", "remove what earlier, crashed runs left behind (keys stowage-conformance-*, tagged snapshots) instead of running the cases")
    .addHelpText(
      "after",
      `
The plugin under test is the one after --, or --plugin NAME among the plugins the host finds
(--plugin-dir, --plugin FILE, and the embedded ${EMBEDDED_LABEL}, which is the default).
Plugin logs are hidden unless --log-level is given.

Exit status: 0 every MUST case passed, 1 a case failed (or a known-failing one passed),
2 usage or configuration error, 3 the plugin could not be started.

Examples:
  stowage conformance                                        the embedded local plugin, temporary directories
  stowage conformance --config conf.yaml -- ./my-plugin      a plugin executable
  stowage conformance --config conf.yaml --plugin example.com/s3 --plugin-dir /plugins --no-embedded
  stowage conformance --config conf.yaml --run 'OS-LIST-*' --report-dir out -- node dist/main.js`,
    )
    .action(async (operands: string[], options: ConformanceOptions, command: Command) => {
      await conformance(operands, options, command);
    });
}
