/**
 * `--provider` and `--config`, shared by the `object` and `snapshot` commands, and the clients
 * they open: the named plugin's ObjectStore or BlockStore, initialised with the given config plus
 * the local plugin's defaults.
 *
 * @packageDocumentation
 */
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import type { PluginConfig } from "@stowage/sdk";
import type { PluginHost, HostBlockStore, HostObjectStore } from "@stowage/sdk/host";
import type { Command } from "commander";
import { collect, parseKeyValues } from "./parse.js";
import { registerSecrets } from "./secrets.js";

/** Name of the local plugin (both kinds). */
export const LOCAL_PLUGIN = "stowage.io/local";

/** Data directory of the local plugin when neither `--config root=…` nor `$STOWAGE_ROOT` is given. */
export const DEFAULT_LOCAL_ROOT = ".stowage-data";

/** `--provider` and `--config` as commander parses them. */
export interface RawStoreOptions {
  readonly provider?: string | undefined;
  readonly config?: readonly string[] | undefined;
}

/** Which plugin to use and how to configure it. */
export interface StoreOptions {
  /** Plugin name. */
  readonly provider: string;
  /** Init config given on the command line. */
  readonly config: Readonly<Record<string, string>>;
}

/** Adds `--provider <name>` and the repeatable `--config k=v` to `command`. */
export function addStoreOptions(command: Command): Command {
  return command
    .option("--provider <name>", "plugin to use", LOCAL_PLUGIN)
    .option("--config <key=value>", "plugin config for Init (repeatable)", collect);
}

/** Checks the raw `--provider`/`--config` values. */
export function storeOptions(raw: RawStoreOptions): StoreOptions {
  return { provider: raw.provider ?? LOCAL_PLUGIN, config: parseKeyValues(raw.config, "--config") };
}

/** An Init config, and the default root directory it uses (to be created), if any. */
export interface ResolvedConfig {
  /** The config to pass to `init`. */
  readonly config: PluginConfig;
  /** The local plugin's root when it was defaulted rather than given. */
  readonly defaultRoot: string | undefined;
}

/**
 * The Init config: the given keys, and for the local plugin `root` defaulting to `$STOWAGE_ROOT`
 * or `./.stowage-data` (made absolute) and, when `createBuckets` is asked for, `createBuckets=true`
 * unless given.
 */
export function initConfig(store: StoreOptions, defaults: { readonly createBuckets?: boolean } = {}): ResolvedConfig {
  const config: Record<string, string> = { ...store.config };
  let defaultRoot: string | undefined;
  if (store.provider === LOCAL_PLUGIN) {
    const given = config.root;
    if (given === undefined) {
      const env = process.env.STOWAGE_ROOT;
      defaultRoot = resolve(env === undefined || env === "" ? DEFAULT_LOCAL_ROOT : env);
      config.root = defaultRoot;
    } else {
      config.root = resolve(given);
    }
    if (defaults.createBuckets === true) config.createBuckets ??= "true";
  }
  return { config, defaultRoot };
}

/** Resolves the config and creates a defaulted root directory (a given one must exist). */
async function prepareConfig(store: StoreOptions, defaults: { readonly createBuckets?: boolean } = {}): Promise<PluginConfig> {
  const { config, defaultRoot } = initConfig(store, defaults);
  if (defaultRoot !== undefined) await mkdir(defaultRoot, { recursive: true });
  return config;
}

/** The provider's ObjectStore, initialised. Unknown plugins and invalid configs fail with exit status 2. */
export async function openObjectStore(
  host: PluginHost,
  store: StoreOptions,
  signal: AbortSignal,
  defaults: { readonly createBuckets?: boolean } = {},
): Promise<HostObjectStore> {
  const client = host.objectStore(store.provider);
  const config = await prepareConfig(store, defaults);
  registerSecrets(host, "object-store", store.provider, config);
  await client.init(config, { signal });
  return client;
}

/** The provider's BlockStore, initialised. Unknown plugins and invalid configs fail with exit status 2. */
export async function openBlockStore(host: PluginHost, store: StoreOptions, signal: AbortSignal): Promise<HostBlockStore> {
  const client = host.blockStore(store.provider);
  const config = await prepareConfig(store);
  registerSecrets(host, "block-store", store.provider, config);
  await client.init(config, { signal });
  return client;
}
