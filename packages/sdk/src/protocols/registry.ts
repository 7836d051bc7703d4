/**
 * The protocol adapters the SDK provides, and the only way into `src/protocols/` for the core
 * (`src/host/`, `src/plugin/`, `src/wire/`; a dependency-cruiser rule enforces it). The host picks
 * an adapter by `PluginCommand.protocol`; `serve()` picks one by the magic cookie the starting
 * process put in the environment (the first half of go-plugin's handshake). See
 * docs/architecture.md.
 */
import { Code, StowageError } from "../errors.js";
import type { HostProtocolAdapter } from "../host/protocol-adapter.js";
import type { ServeProtocolAdapter } from "../plugin/protocol-adapter.js";
import { STOWAGE_PROTOCOL } from "../protocol/constants.js";
import { stowageHostAdapter } from "./stowage/host.js";
import { stowageServeAdapter } from "./stowage/serve.js";
import { veleroHostAdapter } from "./velero/host.js";
import { veleroServeAdapter } from "./velero/serve.js";

/** Host-side adapters by name; Stowage's own protocol is the default. */
const HOST_ADAPTERS: readonly HostProtocolAdapter[] = [stowageHostAdapter, veleroHostAdapter];

/**
 * Plugin-side adapters in order of precedence: an environment carrying Stowage's cookie is served
 * Stowage's protocol even when another protocol's cookie is there too.
 */
const SERVE_ADAPTERS: readonly ServeProtocolAdapter[] = [stowageServeAdapter, veleroServeAdapter];

/** The names `PluginCommand.protocol` accepts. */
export function protocolNames(): string[] {
  return HOST_ADAPTERS.map((a) => a.name);
}

/**
 * The host-side adapter of a protocol: `undefined` (absent) means Stowage's own. An unknown name
 * fails with INVALID_ARGUMENT naming the known ones.
 */
export function hostAdapter(name: string | undefined): HostProtocolAdapter {
  const wanted = name ?? STOWAGE_PROTOCOL;
  const adapter = HOST_ADAPTERS.find((a) => a.name === wanted);
  if (adapter === undefined) {
    throw new StowageError(Code.InvalidArgument, `unknown plugin protocol ${JSON.stringify(wanted)}; use one of ${protocolNames().join(", ")}`);
  }
  return adapter;
}

/** The plugin-side adapter whose magic cookie the environment carries, or undefined when none does. */
export function serveAdapterFor(env: NodeJS.ProcessEnv): ServeProtocolAdapter | undefined {
  return SERVE_ADAPTERS.find((a) => env[a.cookie.key] === a.cookie.value);
}

/**
 * The plugin-side adapter `serve()` runs in network mode (`--listen`): Stowage's own. Velero's
 * protocol is not served over the network.
 */
export function networkServeAdapter(): ServeProtocolAdapter {
  return stowageServeAdapter;
}
