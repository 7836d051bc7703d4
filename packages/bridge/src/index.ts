/**
 * The Stowage bridge: a local plugin executable forwarding every call to a remote plugin service
 * (docs/deployment.md, "A shared plugin service").
 *
 * @packageDocumentation
 */
export { runBridge, connectBridge, forwardingDefinition } from "./bridge.js";
export { bridgeConfig, BridgeConfigError, BRIDGE_ENV, DEFAULT_TLS_DIR } from "./config.js";
export type { BridgeConfig } from "./config.js";
export type { ConnectedBridge } from "./bridge.js";
