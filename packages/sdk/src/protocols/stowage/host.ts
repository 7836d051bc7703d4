/**
 * The host side of Stowage's own protocol: the handshake with Stowage's magic cookie and
 * application protocol version 1, `stowage.v1.PluginInfoService/GetPluginInfo` checked against
 * contract 3.1, Init replay over stowage.v1 after a restart, and the ObjectStore / BlockStore
 * clients (with the data channel) of `src/host/`.
 */
import { create } from "@bufbuild/protobuf";
import { Code, StowageError } from "../../errors.js";
import { BlockStoreService, BlockStoreServiceInitRequestSchema } from "../../gen/stowage/v1/block_store_pb.js";
import { ObjectStoreService, ObjectStoreServiceInitRequestSchema } from "../../gen/stowage/v1/object_store_pb.js";
import { GetPluginInfoRequestSchema, PluginInfoService, PluginKind as WirePluginKind } from "../../gen/stowage/v1/plugin_info_pb.js";
import { BlockStoreClient } from "../../host/block-store-client.js";
import { ObjectStoreClient } from "../../host/object-store-client.js";
import type { ExecutableListing, HostProtocolAdapter } from "../../host/protocol-adapter.js";
import type { RpcChannel } from "../../host/rpc-channel.js";
import type { Logger } from "../../logging.js";
import { checkPluginName } from "../../plugin-name.js";
import { APP_PROTOCOL_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, STOWAGE_PROTOCOL } from "../../protocol/constants.js";
import type { PluginDescriptor } from "../../types.js";
import { descriptorFromWire, kindFromWire } from "../../wire/convert.js";

/**
 * Calls GetPluginInfo and checks the answer against contract 3.1: `problems` lists every rule it
 * breaks (an executable with problems is refused). Descriptors of kinds this host does not know
 * (a newer contract's) are ignored, as clause 1.1.7 asks.
 */
async function fetchInfo(channel: RpcChannel, timeoutMs: number, logger: Logger): Promise<ExecutableListing> {
  const res = await channel.unary(PluginInfoService.method.getPluginInfo, create(GetPluginInfoRequestSchema), { timeoutMs });
  if (!/^1\.\d+$/.test(res.contractVersion)) {
    throw new StowageError(Code.FailedPrecondition, `the plugin implements contract ${JSON.stringify(res.contractVersion)}; this host speaks 1.x`);
  }
  const problems: string[] = [];
  const plugins: PluginDescriptor[] = [];
  const seen = new Set<string>();
  if (res.plugins.length === 0) problems.push("it lists no plugin; every executable serves at least one (contract 3.1.3)");
  for (const [i, d] of res.plugins.entries()) {
    const nameProblem = checkPluginName(d.name);
    if (nameProblem !== undefined) problems.push(`plugin ${String(i + 1)}: ${nameProblem} (contract 3.1.7, 3.2)`);
    if (d.kind === WirePluginKind.UNSPECIFIED) {
      problems.push(`plugin ${JSON.stringify(d.name)} has kind PLUGIN_KIND_UNSPECIFIED; it must be an object store or a block store (contract 3.1.8, 3.3)`);
      continue;
    }
    const kind = kindFromWire(d.kind);
    if (kind === undefined) {
      logger.warn({ plugin: d.name, kind: d.kind }, "ignoring a plugin of a kind this host does not know (a newer contract's)");
      continue;
    }
    const id = `${kind}:${d.name}`;
    if (seen.has(id)) {
      problems.push(`it lists the ${kind} plugin ${JSON.stringify(d.name)} twice; (kind, name) must be unique within one executable (contract 3.1.9)`);
      continue;
    }
    seen.add(id);
    if (nameProblem === undefined) plugins.push(descriptorFromWire(d, kind));
  }
  return { contractVersion: res.contractVersion, runtime: res.runtime, plugins, dataChannelAddress: res.dataChannelAddress, problems };
}

/** Stowage's own protocol, as the host speaks it. */
export const stowageHostAdapter: HostProtocolAdapter = {
  name: STOWAGE_PROTOCOL,
  title: "Stowage",
  appVersion: APP_PROTOCOL_VERSION,
  cookie: { key: MAGIC_COOKIE_KEY, value: MAGIC_COOKIE_VALUE },
  withheldEnv: [],
  cookieRefusalHint: ` (Velero's plugins expect VELERO_PLUGIN; launch those with protocol "velero")`,
  describeMethod: "GetPluginInfo",
  notServedHint: "it does not serve stowage.v1.PluginInfoService, so it is not a Stowage plugin",
  describe: fetchInfo,
  async replayInit(channel, kind, name, config, timeoutMs) {
    if (kind === "object-store") {
      await channel.unary(ObjectStoreService.method.init, create(ObjectStoreServiceInitRequestSchema, { plugin: name, config }), { timeoutMs });
    } else {
      await channel.unary(BlockStoreService.method.init, create(BlockStoreServiceInitRequestSchema, { plugin: name, config }), { timeoutMs });
    }
  },
  objectStore: (processes, descriptor, settings) => new ObjectStoreClient(processes, descriptor, settings, STOWAGE_PROTOCOL),
  blockStore: (processes, descriptor, settings) => new BlockStoreClient(processes, descriptor, settings, STOWAGE_PROTOCOL),
};
