/**
 * The host side of Velero interop: the handshake with Velero's cookie (`VELERO_PLUGIN=hello`,
 * application protocol version 2), asking a Velero plugin binary what it serves
 * (`generated.PluginLister/ListPlugins`), draining go-plugin's broker stream, and the clients that
 * present its `generated.ObjectStore` / `generated.VolumeSnapshotter` as the host's ObjectStore
 * and BlockStore. See docs/velero.md for the mapping and where Velero's contract is weaker than ours.
 */
import { Metadata, type Client } from "@grpc/grpc-js";
import { PluginLister } from "../../gen/generated/PluginLister_pb.js";
import { GRPCBroker, type ConnInfo } from "../../gen/plugin/grpc_broker_pb.js";
import type { ExecutableListing, HostProtocolAdapter } from "../../host/protocol-adapter.js";
import type { RpcChannel } from "../../host/rpc-channel.js";
import type { Logger } from "../../logging.js";
import { MAGIC_COOKIE_KEY } from "../../protocol/constants.js";
import type { PluginDescriptor } from "../../types.js";
import { methodCodec } from "../../wire/rpc.js";
import { VeleroBlockStore } from "./block-store-client.js";
import { VELERO_APP_PROTOCOL_VERSION, VELERO_COOKIE_KEY, VELERO_COOKIE_VALUE, VELERO_KIND_OBJECT_STORE, VELERO_KIND_VOLUME_SNAPSHOTTER, VELERO_PROTOCOL } from "./constants.js";
import { VeleroObjectStore } from "./object-store-client.js";

/** What a Velero plugin binary serves, as (kind, name) pairs translated to our descriptors. */
export interface VeleroListing {
  readonly plugins: readonly PluginDescriptor[];
  /** Kinds we do not map (item actions, …), as `kind:name`. */
  readonly ignored: readonly string[];
}

/** Calls `generated.PluginLister/ListPlugins` and maps ObjectStore/VolumeSnapshotter entries. */
export async function listVeleroPlugins(channel: RpcChannel, timeoutMs: number): Promise<VeleroListing> {
  const res = await channel.unary(PluginLister.method.listPlugins, {}, { timeoutMs });
  const plugins: PluginDescriptor[] = [];
  const ignored: string[] = [];
  for (const p of res.plugins) {
    if (p.kind === VELERO_KIND_OBJECT_STORE) {
      // CreateSignedURL is part of every Velero ObjectStore and always signs GETs.
      plugins.push({ name: p.name, kind: "object-store", capabilities: ["SIGNED_GET_URLS"], description: `Velero ObjectStore plugin (${p.command})`, configKeys: [] });
    } else if (p.kind === VELERO_KIND_VOLUME_SNAPSHOTTER) {
      plugins.push({ name: p.name, kind: "block-store", capabilities: [], description: `Velero VolumeSnapshotter plugin (${p.command})`, configKeys: [] });
    } else {
      ignored.push(`${p.kind}:${p.name}`);
    }
  }
  return { plugins, ignored };
}

/**
 * Opens go-plugin's broker stream like the Go client does and keeps reading it (Velero never
 * brokers connections; an error, e.g. UNIMPLEMENTED from a non-Go plugin, is ignored).
 */
export function drainBroker(client: Client, logger: Logger): void {
  const codec = methodCodec(GRPCBroker.method.startStream);
  const stream = client.makeBidiStreamRequest(codec.path, codec.serializeRequest, codec.deserializeResponse, new Metadata(), {});
  stream.on("data", (info: ConnInfo) => {
    logger.debug({ serviceId: info.serviceId }, "ignoring a go-plugin broker message");
  });
  stream.on("error", () => undefined);
}

/** What `generated.PluginLister/ListPlugins` reported, as an executable listing. */
async function describeVelero(channel: RpcChannel, timeoutMs: number, logger: Logger): Promise<ExecutableListing> {
  const listing = await listVeleroPlugins(channel, timeoutMs);
  if (listing.ignored.length > 0) logger.debug({ ignored: listing.ignored }, "ignoring Velero plugin kinds Stowage does not map");
  return { contractVersion: `velero/${String(VELERO_APP_PROTOCOL_VERSION)}`, runtime: "velero-plugin (go-plugin)", plugins: listing.plugins, dataChannelAddress: "", problems: [] };
}

/**
 * Velero's protocol, as the host speaks it to an unmodified Velero plugin binary. Its clients
 * re-run Init on a relaunched process themselves (as Velero's restartable wrappers do), so there
 * is no Init replay here.
 */
export const veleroHostAdapter: HostProtocolAdapter = {
  name: VELERO_PROTOCOL,
  title: "Velero",
  appVersion: VELERO_APP_PROTOCOL_VERSION,
  cookie: { key: VELERO_COOKIE_KEY, value: VELERO_COOKIE_VALUE },
  // A Velero plugin gets Velero's cookie only.
  withheldEnv: [MAGIC_COOKIE_KEY],
  cookieRefusalHint: "",
  describeMethod: "ListPlugins",
  notServedHint: "it does not serve generated.PluginLister, so it is not a Velero plugin",
  connected: drainBroker,
  describe: describeVelero,
  objectStore: (processes, descriptor, settings) => new VeleroObjectStore(processes, descriptor, settings),
  blockStore: (processes, descriptor, settings) => new VeleroBlockStore(processes, descriptor, settings),
};
