/**
 * The bridge: connects to a remote Stowage plugin service as a host, then serves the plugins it
 * found to whoever started this process (Velero, through its own protocol, or a Stowage host), each
 * call forwarded to the service. Bodies travel over the service's TLS connection, never in
 * plaintext across the network.
 */
import { PluginHost, type HostedPlugin, type PluginHostOptions } from "@stowage/sdk/host";
import { defineBlockStore, defineObjectStore, serve, type PluginDefinition } from "@stowage/sdk/plugin";
import type { Capability } from "@stowage/sdk";
import { bridgeConfig, BridgeConfigError, type BridgeConfig } from "./config.js";

/** Capabilities the bridge cannot forward: direct transfer needs the plugin's own signing in this process. */
const NOT_FORWARDED: ReadonlySet<Capability> = new Set<Capability>(["DIRECT_TRANSFER"]);

/** A definition that forwards every call of `plugin` to the host's client for it. */
export function forwardingDefinition(host: PluginHost, plugin: HostedPlugin): PluginDefinition {
  const { descriptor } = plugin;
  const base = {
    name: descriptor.name,
    description: `${descriptor.description === "" ? descriptor.name : descriptor.description} (through the Stowage bridge, at ${plugin.command})`,
    capabilities: descriptor.capabilities.filter((c) => !NOT_FORWARDED.has(c)),
    configKeys: descriptor.configKeys,
  };
  return descriptor.kind === "object-store"
    ? defineObjectStore({ ...base, create: () => host.objectStore(descriptor.name) })
    : defineBlockStore({ ...base, create: () => host.blockStore(descriptor.name) });
}

/** A bridge connected to its plugin service. */
export interface ConnectedBridge {
  /** The host holding the connections to the service's replicas. */
  readonly host: PluginHost;
  /** The forwarding definitions to serve. */
  readonly plugins: PluginDefinition[];
}

/**
 * Connects to the service `config` names and returns the definitions of the plugins to offer.
 *
 * @throws StowageError when the service cannot be reached or refuses this host's certificate; BridgeConfigError when a listed plugin is not offered.
 */
export async function connectBridge(config: BridgeConfig, options: Omit<PluginHostOptions, "remote"> = {}): Promise<ConnectedBridge> {
  const host = new PluginHost({ ...options, remote: [config.service] });
  await host.start();
  const offered = host.plugins();
  const missing = [...(config.plugins ?? [])].filter((name) => !offered.some((p) => p.descriptor.name === name));
  if (missing.length > 0) {
    await host.close();
    throw new BridgeConfigError(`the plugin service at ${config.service.address} does not offer [${missing.join(", ")}] to this identity; it offers [${[...new Set(offered.map((p) => p.descriptor.name))].join(", ")}]`);
  }
  const plugins = offered.filter((p) => config.plugins === undefined || config.plugins.has(p.descriptor.name)).map((p) => forwardingDefinition(host, p));
  return { host, plugins };
}

/**
 * Runs the bridge executable: reads its configuration from `env`, connects, and serves. A
 * configuration or connection failure is written to stderr (the starting host quotes it) and ends
 * the process with status 1.
 */
export async function runBridge(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  let plugins: PluginDefinition[];
  try {
    ({ plugins } = await connectBridge(bridgeConfig(env)));
  } catch (error) {
    process.stderr.write(`stowage-plugin-bridge: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  await serve({ plugins, env, argv });
}
