import type { Logger } from "../logging.js";
import type { BlockStore, Capability, ConfigKeySpec, ObjectStore } from "../types.js";

/** What a plugin factory receives. */
export interface PluginContext {
  /** The plugin's name. */
  readonly name: string;
  /** A logger whose lines reach the host, tagged with the plugin's name. */
  readonly logger: Logger;
}

/** Fields shared by both plugin kinds. */
interface PluginDefinitionBase {
  /** Name, `<dns-1123-subdomain>/<name>`, for example `stowage.io/local`. */
  readonly name: string;
  /** One-line description. */
  readonly description?: string | undefined;
  /** Optional behaviours this plugin honours. */
  readonly capabilities?: readonly Capability[] | undefined;
  /** Configuration keys `init` accepts (shown by tools; secrets are redacted in logs). */
  readonly configKeys?: readonly ConfigKeySpec[] | undefined;
}

/** Defines a named ObjectStore plugin. */
export interface ObjectStorePluginDefinition extends PluginDefinitionBase {
  /** The kind. */
  readonly kind: "object-store";
  /**
   * Creates the implementation; called once per process, on first use (in network mode once per
   * caller session). If the object has a `close()` method, it is called (and awaited, for at most a
   * second) when the process shuts down, or when its session is closed.
   */
  create(context: PluginContext): ObjectStore;
}

/** Defines a named BlockStore plugin. */
export interface BlockStorePluginDefinition extends PluginDefinitionBase {
  /** The kind. */
  readonly kind: "block-store";
  /** Creates the implementation, like {@link ObjectStorePluginDefinition.create}. */
  create(context: PluginContext): BlockStore;
}

/** Either plugin definition. */
export type PluginDefinition = ObjectStorePluginDefinition | BlockStorePluginDefinition;

/**
 * Defines an ObjectStore plugin for {@link serve}.
 *
 * @example
 * ```ts
 * defineObjectStore({ name: "example.com/memory", create: () => new MemoryObjectStore() });
 * ```
 */
export function defineObjectStore(definition: Omit<ObjectStorePluginDefinition, "kind">): ObjectStorePluginDefinition {
  return { ...definition, kind: "object-store" };
}

/** Defines a BlockStore plugin for {@link serve}. */
export function defineBlockStore(definition: Omit<BlockStorePluginDefinition, "kind">): BlockStorePluginDefinition {
  return { ...definition, kind: "block-store" };
}
