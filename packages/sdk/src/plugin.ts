/**
 * `@stowage/sdk/plugin`: everything a plugin author needs to serve ObjectStore and BlockStore
 * plugins from one executable.
 *
 * @packageDocumentation
 */

// Relevant to plugin authors.
export { serve, logLevelFromArgs } from "./plugin/serve.js";
export type { ServeOptions } from "./plugin/serve.js";
export { defineObjectStore, defineBlockStore, checkPluginName } from "./plugin/definition.js";
export type { PluginContext, PluginDefinition, ObjectStorePluginDefinition, BlockStorePluginDefinition } from "./plugin/definition.js";
export { validateConfig, redactConfig, configBoolean, configInteger } from "./plugin/config.js";
export { encodePageToken, decodePageToken } from "./plugin/page-token.js";
export { abortError, throwIfAborted, untilAborted, iterateUntilAborted } from "./plugin/abort.js";
export { encodeHeaderValue, decodeHeaderValue, contentRangeTotal } from "./plugin/header-values.js";
