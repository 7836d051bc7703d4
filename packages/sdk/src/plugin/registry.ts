import { Code, Reason, StowageError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { BlockStore, ObjectStore, PluginConfig, PluginDescriptor, PluginKind } from "../types.js";
import { checkPluginName, type PluginDefinition } from "./definition.js";

interface Entry<T> {
  readonly definition: PluginDefinition;
  instance?: T;
  initialised: boolean;
}

/** Instance type per kind. */
interface KindMap {
  "object-store": ObjectStore;
  "block-store": BlockStore;
}

/**
 * The named plugins of one executable: validates names, creates one instance per name lazily and
 * tracks whether each has been initialised (calls before a successful Init are refused here, so
 * every plugin behaves the same way).
 */
export class PluginRegistry {
  readonly #entries = new Map<string, Entry<ObjectStore | BlockStore>>();
  readonly #logger: Logger;

  constructor(definitions: readonly PluginDefinition[], logger: Logger) {
    this.#logger = logger;
    for (const definition of definitions) {
      const problem = checkPluginName(definition.name);
      if (problem !== undefined) throw new Error(problem);
      const id = `${definition.kind}:${definition.name}`;
      if (this.#entries.has(id)) throw new Error(`plugin ${definition.name} (${definition.kind}) is registered twice`);
      this.#entries.set(id, { definition, initialised: false });
    }
    if (this.#entries.size === 0) throw new Error("serve() needs at least one plugin definition");
  }

  /** Descriptors of every plugin, sorted by kind then name. */
  descriptors(): PluginDescriptor[] {
    return [...this.#entries.values()]
      .map(({ definition: d }) => ({
        name: d.name,
        kind: d.kind,
        capabilities: [...(d.capabilities ?? [])],
        description: d.description ?? "",
        configKeys: [...(d.configKeys ?? [])],
      }))
      .sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  }

  #entry<K extends PluginKind>(kind: K, name: string): Entry<KindMap[K]> {
    const entry = this.#entries.get(`${kind}:${name}`) as Entry<KindMap[K]> | undefined;
    if (entry === undefined) {
      const served = this.descriptors()
        .filter((d) => d.kind === kind)
        .map((d) => d.name);
      throw new StowageError(Code.NotFound, `no ${kind} plugin named ${JSON.stringify(name)} here; this executable serves [${served.join(", ")}]`, {
        reason: Reason.PluginNotFound,
        metadata: { plugin: name },
      });
    }
    if (entry.instance === undefined) {
      const logger = this.#logger.child({ "@module": name });
      entry.instance = entry.definition.create({ name, logger }) as KindMap[K];
    }
    return entry;
  }

  /** Runs Init on the named plugin and remembers that it succeeded. */
  async init(kind: PluginKind, name: string, config: PluginConfig, signal: AbortSignal): Promise<void> {
    const entry = this.#entry(kind, name);
    entry.initialised = false;
    const instance = entry.instance;
    if (instance === undefined) throw new StowageError(Code.Internal, `plugin ${name} has no instance`);
    await instance.init(config, { signal });
    entry.initialised = true;
  }

  /**
   * Releases every created instance that has a `close()` method (servers, pools, timers). Called
   * when the plugin process shuts down.
   */
  async close(): Promise<void> {
    const closing = [...this.#entries.values()].map(async (entry) => {
      const instance = entry.instance as { close?: () => unknown } | undefined;
      if (typeof instance?.close === "function") await instance.close();
    });
    await Promise.allSettled(closing);
  }

  /** The initialised instance of a plugin; NOT_INITIALIZED before a successful Init. */
  get<K extends PluginKind>(kind: K, name: string): KindMap[K] {
    const entry = this.#entry(kind, name);
    if (!entry.initialised || entry.instance === undefined) {
      throw new StowageError(Code.FailedPrecondition, `plugin ${name} is not initialised: call Init with its configuration first`, {
        reason: Reason.NotInitialized,
        metadata: { plugin: name },
      });
    }
    return entry.instance;
  }
}
