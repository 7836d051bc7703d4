/**
 * What a protocol must provide to the host. The host core (launch, handshake, supervision, health
 * checks, restarts) is the same for every executable; a {@link HostProtocolAdapter} supplies what
 * differs between application protocols spoken over go-plugin's process protocol: the magic
 * cookie and version of the handshake, how to ask the executable what it serves, how to replay an
 * Init after a restart, and the ObjectStore / BlockStore clients over its gRPC channel.
 *
 * The adapters live in `src/protocols/` and are reached only through `src/protocols/registry.ts`
 * (docs/architecture.md).
 */
import type { Client } from "@grpc/grpc-js";
import type { Logger } from "../logging.js";
import type { BlockStore, CallOptions, ListObjectsInput, ListObjectsPage, ListSnapshotsInput, ListSnapshotsPage, ObjectStore, PluginConfig, PluginDescriptor, PluginKind } from "../types.js";
import type { PageListing } from "./page-listing.js";
import type { DirectTransferExecutor } from "./direct-transfer.js";
import type { RpcChannel } from "./rpc-channel.js";

/** What an executable reported about itself after the handshake. */
export interface ExecutableInfo {
  /** The contract version it implements (or the foreign protocol's, e.g. `name/2`). */
  readonly contractVersion: string;
  /** The runtime it reported. */
  readonly runtime: string;
  /** The plugins it serves. */
  readonly plugins: readonly PluginDescriptor[];
  /** Its data-channel address, or "" when it offers none. */
  readonly dataChannelAddress: string;
}

/** {@link ExecutableInfo} plus every rule of the contract the answer breaks (such an executable is refused). */
export interface ExecutableListing extends ExecutableInfo {
  /** What is wrong with the answer; empty when it is acceptable. */
  readonly problems: readonly string[];
}

/** A running plugin process, as a client sees it. */
export interface LaunchedProcess {
  /** The gRPC connection to it. */
  readonly channel: RpcChannel;
  /** What it reported at launch. */
  readonly info: ExecutableInfo;
  /** Its process ID. */
  readonly pid: number;
  /** The executable's name, for messages. */
  readonly name: string;
}

/**
 * Where a client gets a live process from: the supervisor of one executable instance, or a pool of
 * them (several processes of one executable, or the replicas of a remote plugin service).
 */
export interface ProcessSource {
  /** A live process: the running one (in a pool, the one with the fewest calls in flight), or a new launch with every remembered Init replayed. */
  acquire(): Promise<LaunchedProcess>;
  /**
   * Records an Init that succeeded on `from`; it is replayed through
   * {@link HostProtocolAdapter.replayInit} on every other process of the source (before its next
   * call) and after every relaunch.
   */
  rememberInit(kind: PluginKind, name: string, config: PluginConfig, from: LaunchedProcess): void;
}

/** Settings every client gets from the host's options. */
export interface ClientSettings {
  /** Deadline applied to unary calls that set none, in ms (0: none). */
  readonly defaultTimeoutMs: number;
  /** Use the plugin's data channel for bodies when it offers one. */
  readonly dataChannel: boolean;
  /** Longest wait on the plugin without progress in a streaming call, in ms (0 or absent: none). */
  readonly streamIdleTimeoutMs?: number | undefined;
  /** Where the client reports a data channel it stopped using. */
  readonly logger?: Logger | undefined;
  /** Executes direct-transfer plans (contract 5.8); absent: bodies always go through the plugin. */
  readonly directTransfer?: DirectTransferExecutor | undefined;
  /** Called once per put and get with the path its body took. */
  readonly onTransfer?: ((event: TransferEvent) => void) | undefined;
}

/** How the body of one put or get travelled, for metrics and tests. */
export interface TransferEvent {
  /** The call. */
  readonly operation: "put" | "get";
  /** The plugin. */
  readonly plugin: string;
  /** `direct`: between host and store (contract 5.8); `data-channel` or `messages`: through the plugin. */
  readonly path: "direct" | "data-channel" | "messages";
  /** Why a direct transfer was not used, when the plugin offers it: its refusal, or the store being unreachable. */
  readonly fallback?: string | undefined;
}

/** What a hosted client adds to the interface it implements. */
export interface HostedClient {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** The protocol the executable speaks (`PluginCommand.protocol`, default `stowage`). */
  readonly protocol: string;
}

/** An {@link ObjectStore} served by a plugin process, as `PluginHost.objectStore()` hands it out. */
export interface HostObjectStore extends ObjectStore, HostedClient {
  /** Lists keys page by page (clause 5.5): iterate with `for await`, from `pageToken`, at most `maxPages` pages. */
  listObjects(input: ListObjectsInput, options?: CallOptions): AsyncGenerator<ListObjectsPage, void, undefined>;
}

/** A {@link BlockStore} served by a plugin process, as `PluginHost.blockStore()` hands it out. */
export interface HostBlockStore extends BlockStore, HostedClient {
  /**
   * Lists snapshots page by page (clause 6.4): iterate with `for await`, like `listObjects`, from
   * `pageToken`, at most `maxPages` pages. Awaiting the result directly gives the first page only
   * (deprecated).
   */
  listSnapshots(input: ListSnapshotsInput, options?: CallOptions): PageListing<ListSnapshotsPage>;
}

/** What a protocol must provide to the host. */
export interface HostProtocolAdapter {
  /** Its name in `PluginCommand.protocol`. */
  readonly name: string;
  /** Its name in messages ("a Stowage plugin"). */
  readonly title: string;
  /** The application protocol version the handshake must carry. */
  readonly appVersion: number;
  /** The magic cookie the executable is started with. */
  readonly cookie: { readonly key: string; readonly value: string };
  /** Variables of the host's environment the executable must not inherit (another protocol's cookie). */
  readonly withheldEnv: readonly string[];
  /** Appended to the refusal of an executable that rejected the cookie (a pointer to the right protocol). */
  readonly cookieRefusalHint: string;
  /** The RPC that asks the executable what it serves, for messages ("GetPluginInfo"). */
  readonly describeMethod: string;
  /** Why an executable that does not serve {@link describeMethod} is not one of this protocol's. */
  readonly notServedHint: string;
  /** Runs once the gRPC client is connected (e.g. to drain a stream the executable expects to be read). */
  connected?(client: Client, logger: Logger): void;
  /** Asks the executable what it serves and checks the answer. */
  describe(channel: RpcChannel, timeoutMs: number, logger: Logger): Promise<ExecutableListing>;
  /**
   * Replays a remembered Init on a relaunched process. Adapters whose clients never call
   * {@link ProcessSource.rememberInit} (they re-initialise lazily) may leave it out.
   */
  replayInit?(channel: RpcChannel, kind: PluginKind, name: string, config: PluginConfig, timeoutMs: number): Promise<void>;
  /** A client for one ObjectStore plugin of the executable. */
  objectStore(processes: ProcessSource, descriptor: PluginDescriptor, settings: ClientSettings): HostObjectStore;
  /** A client for one BlockStore plugin of the executable. */
  blockStore(processes: ProcessSource, descriptor: PluginDescriptor, settings: ClientSettings): HostBlockStore;
}
