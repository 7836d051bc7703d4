/**
 * Names the host entry point exported before its clients became interfaces; kept so that code
 * using them as types still compiles. The classes behind them are internal: `instanceof` checks no
 * longer work; test the client's `protocol` instead.
 */
import type { HostBlockStore, HostObjectStore } from "./host/protocol-adapter.js";

/**
 * An ObjectStore client of the host.
 *
 * @deprecated Use {@link HostObjectStore}, what `PluginHost.objectStore()` returns.
 */
export type RemoteObjectStore = HostObjectStore;

/**
 * A BlockStore client of the host.
 *
 * @deprecated Use {@link HostBlockStore}, what `PluginHost.blockStore()` returns.
 */
export type RemoteBlockStore = HostBlockStore;

/**
 * An ObjectStore client of a plugin that speaks another backup server's protocol (`protocol` tells which).
 *
 * @deprecated Use {@link HostObjectStore} and check its `protocol`.
 */
export type VeleroObjectStore = HostObjectStore;

/**
 * A BlockStore client of a plugin that speaks another backup server's protocol (`protocol` tells which).
 *
 * @deprecated Use {@link HostBlockStore} and check its `protocol`.
 */
export type VeleroBlockStore = HostBlockStore;
