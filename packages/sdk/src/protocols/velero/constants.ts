/**
 * Constants of Velero's plugin protocol (HashiCorp go-plugin with Velero's handshake). See
 * docs/velero.md.
 *
 * @packageDocumentation
 */

/** Environment variable carrying Velero's magic cookie. */
export const VELERO_COOKIE_KEY = "VELERO_PLUGIN";
/** Value of Velero's magic cookie. */
export const VELERO_COOKIE_VALUE = "hello";
/** The application protocol version Velero (since v1.0) negotiates. */
export const VELERO_APP_PROTOCOL_VERSION = 2;
/** Largest body chunk in one PutObject / GetObject message (well under Go's 4 MiB request limit). */
export const VELERO_CHUNK_BYTES = 1024 * 1024;
/** Velero's kind string for object stores. */
export const VELERO_KIND_OBJECT_STORE = "ObjectStore";
/** Velero's kind string for volume snapshotters. */
export const VELERO_KIND_VOLUME_SNAPSHOTTER = "VolumeSnapshotter";
/** Config keys Velero injects into every ObjectStore/VolumeSnapshotter Init (protocol.md §7.2). */
export const VELERO_INJECTED_KEYS: readonly string[] = ["bucket", "prefix", "caCert", "credentialsFile"];
/** Prefix of the message of a status ABORTED that a Velero plugin returns when it panicked. */
export const PANIC_PREFIX = "plugin panicked: ";
/** Any type URL of Velero's error-location detail. */
export const STACK_TYPE_URL = "type.googleapis.com/generated.Stack";
/** The protocol's name in `PluginCommand.protocol`. */
export const VELERO_PROTOCOL = "velero";
