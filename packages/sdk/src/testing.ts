/**
 * `@stowage/sdk/testing`: small reference implementations and helpers for tests, fixtures and
 * scaffolds: the in-memory ObjectStore, and helpers to catch a call's StowageError, hash a body and
 * wait for a condition. Read whole bodies with `buffer` from `node:stream/consumers`.
 *
 * @packageDocumentation
 */
// The in-memory ObjectStore is a generated copy of the repository's one reference store,
// examples/memory-plugin/src/store.ts (scripts/generate-scaffold-store.mjs): conformant, with ranged
// reads and metadata, its buckets named by the `buckets` key, its memory bounded by `maxTotalSize`.
export { MemoryStore as MemoryObjectStore, CONFIG_KEYS as memoryObjectStoreConfigKeys } from "./testing/memory-object-store.js";
export { caught, eventually, rejection, sha256Hex, thrownBy, type EventuallyOptions } from "./testing/assertions.js";
