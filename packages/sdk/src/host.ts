/**
 * `@stowage/sdk/host`: what a backup server uses to discover, launch, supervise and call plugins.
 *
 * @packageDocumentation
 */

// Relevant to backup-server authors.
export { PluginHost } from "./host/plugin-host.js";
export type { PluginHostOptions, HostedPlugin, ClientOptions, DirectTransferOptions, HostLimits, TelemetryOptions, ProcessCount, ProcessCounts } from "./host/plugin-host.js";
export type { HostObjectStore, HostBlockStore, HostedClient, TransferEvent } from "./host/protocol-adapter.js";
export type { PageListing } from "./host/page-listing.js";
export type { PluginCommand } from "./host/command-line.js";
export type { RestartPolicy } from "./host/supervisor.js";
export type { HealthCheckOptions } from "./host/health-monitor.js";
export { discoverExecutables } from "./host/discover.js";
export { nodePluginCommand, STREAMING_NODE_FLAGS } from "./host/node-command.js";
export { DirectTransferExecutor, StoreUnreachable, DIRECT_TRANSFER_DEFAULTS } from "./host/direct-transfer.js";
export type { DirectTransferSettings } from "./host/direct-transfer.js";
export type { RetryOptions } from "./host/retry.js";
export type { CallLimits } from "./host/call-limiter.js";
export type { RemotePluginService } from "./host/remote-service.js";
export type { RemoteTls } from "./host/remote-tls.js";
// eslint-disable-next-line @typescript-eslint/no-deprecated -- kept for callers written against the classes these names had
export type { RemoteObjectStore, RemoteBlockStore, VeleroObjectStore, VeleroBlockStore } from "./host-deprecated.js";

// Only relevant to tools that inspect the protocol.
export { parseHandshake, formatHandshake } from "./protocol/handshake.js";
export type { Handshake } from "./protocol/handshake.js";
export { parseLogLine } from "./host/log-forward.js";
export type { ParsedLogLine } from "./host/log-forward.js";
