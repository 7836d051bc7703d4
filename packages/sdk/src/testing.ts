/**
 * `@stowage/sdk/testing`: small reference implementations for tests, fixtures and scaffolds.
 *
 * @packageDocumentation
 */
export { MemoryObjectStore, memoryObjectStoreConfigKeys } from "./testing/memory-object-store.js";
