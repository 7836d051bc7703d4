/**
 * `@stowage/sdk/host`: what a backup server uses to discover, launch, supervise and call plugins.
 *
 * @packageDocumentation
 */

// Relevant to backup-server authors.
export { PluginHost } from "./host/plugin-host.js";
export type { PluginHostOptions, HostedPlugin, ClientOptions } from "./host/plugin-host.js";
export { RemoteObjectStore } from "./host/object-store-client.js";
export type { RemoteClientOptions } from "./host/object-store-client.js";
export { RemoteBlockStore } from "./host/block-store-client.js";
export type { PluginCommand } from "./host/plugin-process.js";
export type { RestartPolicy } from "./host/supervisor.js";
export type { HealthCheckOptions } from "./host/health-monitor.js";
export { discoverExecutables } from "./host/discover.js";
export { nodePluginCommand, STREAMING_NODE_FLAGS } from "./host/node-command.js";
// Velero interop (docs/velero.md): adapters handed out for `PluginCommand.protocol: "velero"`.
export { VeleroObjectStore, VeleroBlockStore } from "./velero/host.js";

// Only relevant to tools that inspect the protocol.
export { parseHandshake, formatHandshake } from "./protocol/handshake.js";
export type { Handshake } from "./protocol/handshake.js";
export { parseLogLine } from "./host/log-forward.js";
export type { ParsedLogLine } from "./host/log-forward.js";
