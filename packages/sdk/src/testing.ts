/**
 * `@stowage/sdk/testing`: small reference implementations and helpers for tests, fixtures and
 * scaffolds: the in-memory ObjectStore, and helpers to catch a call's StowageError, hash a body and
 * wait for a condition. Read whole bodies with `buffer` from `node:stream/consumers`.
 *
 * @packageDocumentation
 */
export { MemoryObjectStore, memoryObjectStoreConfigKeys } from "./testing/memory-object-store.js";
export { caught, eventually, rejection, sha256Hex, thrownBy, type EventuallyOptions } from "./testing/assertions.js";
