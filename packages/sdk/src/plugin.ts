/**
 * `@stowage/sdk/plugin`: everything a plugin author needs to serve ObjectStore and BlockStore
 * plugins from one executable.
 *
 * @packageDocumentation
 */

// Relevant to plugin authors.
export { serve, logLevelFromArgs } from "./plugin/serve.js";
export type { ServeOptions, NetworkServeOptions } from "./plugin/serve.js";
export { defineObjectStore, defineBlockStore } from "./plugin/definition.js";
export { checkPluginName, isPluginName } from "./plugin-name.js";
export { compareUtf8 } from "./key-order.js";
export type { PluginContext, PluginDefinition, ObjectStorePluginDefinition, BlockStorePluginDefinition } from "./plugin/definition.js";
export { validateConfig, redactConfig } from "./plugin/config.js";
export { configBoolean, configInteger, defineConfig, readConfigValue, text, flag, integer, size, duration, oneOf, url, custom } from "./plugin/config-schema.js";
export type {
  ConfigSchema,
  ConfigDeclarations,
  ConfigKeyDeclaration,
  ConfigValue,
  ConfigValueSchema,
  ConfigValues,
  TextOptions,
  IntegerOptions,
  SizeOptions,
  DurationOptions,
  OneOfOptions,
  UrlOptions,
  CustomOptions,
} from "./plugin/config-schema.js";
export { invalidConfig, configString, readCaCert, parseSize, parseDuration, formatSize, formatDuration } from "./plugin/config-values.js";
export type { BareDurationUnit } from "./plugin/config-values.js";
export { encodePageToken, decodePageToken } from "./plugin/page-token.js";
export { abortError, throwIfAborted, untilAborted, iterateUntilAborted } from "./plugin/abort.js";
export { encodeHeaderValue, decodeHeaderValue, contentRangeTotal } from "./plugin/header-values.js";
export {
  mapHttpStatus,
  codeForHttpStatus,
  httpStatusError,
  networkErrorCode,
  isNetworkError,
  tlsErrorCode,
  backendUnavailable,
  parseRetryAfter,
  retryAfterMetadata,
} from "./plugin/http-status.js";
export type { StatusMapping } from "./plugin/http-status.js";
export {
  DEFAULT_BACKEND_TIMEOUTS,
  backendTimeoutConfigKeys,
  backendTimeoutDeclarations,
  backendTimeouts,
  parseBackendTimeouts,
  requestDeadline,
  withRequestTimeout,
  guardBody,
  idleWatchdog,
} from "./plugin/backend-timeouts.js";
export type { BackendTimeouts, BackendTimeoutKey, LegacyBackendTimeoutKey, BackendTimeoutDeclarations, RequestDeadline, GuardBodyOptions, IdleWatchdog } from "./plugin/backend-timeouts.js";
export { createBackendAgents, BackendTimeoutError } from "./plugin/backend-agents.js";
export type { BackendAgentOptions, BackendAgents } from "./plugin/backend-agents.js";
export { secretValues, redactError } from "./plugin/secrets.js";
