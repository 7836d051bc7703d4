/**
 * Constants of the Stowage process protocol (HashiCorp go-plugin's protocol, docs/protocol.md).
 *
 * @packageDocumentation
 */

/** Environment variable that carries the magic cookie. */
export const MAGIC_COOKIE_KEY = "STOWAGE_PLUGIN";
/**
 * Value of the magic cookie. Not a secret: it only tells a plugin binary that a Stowage host,
 * not a person, started it.
 */
export const MAGIC_COOKIE_VALUE = "b5c1e7a2-stowage-plugin";
/** go-plugin's core protocol version. */
export const CORE_PROTOCOL_VERSION = 1;
/** The Stowage application protocol version negotiated in the handshake. */
export const APP_PROTOCOL_VERSION = 1;
/** The contract version reported by PluginInfoService. */
export const CONTRACT_VERSION = "1.2";
/** Health service name go-plugin checks. */
export const HEALTH_SERVICE_NAME = "plugin";
/** Largest chunk sent in one PutObject/GetObject message. */
export const MAX_CHUNK_BYTES = 1024 * 1024;
/** Length of a data-channel token in bytes. */
export const DATA_CHANNEL_TOKEN_BYTES = 16;
/** The go-plugin environment variables. */
export const ENV = {
  protocolVersions: "PLUGIN_PROTOCOL_VERSIONS",
  unixSocketDir: "PLUGIN_UNIX_SOCKET_DIR",
  unixSocketGroup: "PLUGIN_UNIX_SOCKET_GROUP",
  minPort: "PLUGIN_MIN_PORT",
  maxPort: "PLUGIN_MAX_PORT",
  clientCert: "PLUGIN_CLIENT_CERT",
  multiplexGrpc: "PLUGIN_MULTIPLEX_GRPC",
} as const;

/** The name of Stowage's own protocol in `PluginCommand.protocol` (the default). */
export const STOWAGE_PROTOCOL = "stowage";
