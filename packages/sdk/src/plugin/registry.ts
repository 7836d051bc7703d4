import { Code, Reason, StowageError } from "../errors.js";
import { SecretRedactor, type Logger } from "../logging.js";
import type { BlockStore, ObjectStore, PluginConfig, PluginDescriptor, PluginKind } from "../types.js";
import { redactError, redactingProxy, secretValues } from "./secrets.js";
import { checkPluginName } from "../plugin-name.js";
import type { PluginDefinition } from "./definition.js";

interface Entry<T> {
  readonly definition: PluginDefinition;
  instance?: T;
  initialised: boolean;
  /** The secret values of the last successful Init. */
  secrets: readonly string[];
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
 *
 * It also keeps secrets out of what leaves the process: the values of the configuration keys a
 * plugin marks `secret` are registered with {@link secrets} from the start of each Init (the
 * process's logger redacts them from every line), and every error a plugin's calls fail with,
 * Init's included, has them replaced by `[REDACTED]` in its message and metadata.
 */
export class PluginRegistry {
  readonly #entries = new Map<string, Entry<ObjectStore | BlockStore>>();
  readonly #logger: Logger;
  /** The secret values of every plugin's configuration, for the process's logger. */
  readonly secrets: SecretRedactor;

  /**
   * @param definitions - The plugins served.
   * @param logger - The process's logger.
   * @param secrets - Where secret configuration values are registered; pass the one the logger redacts with.
   */
  constructor(definitions: readonly PluginDefinition[], logger: Logger, secrets: SecretRedactor = new SecretRedactor()) {
    this.#logger = logger;
    this.secrets = secrets;
    for (const definition of definitions) {
      const problem = checkPluginName(definition.name);
      if (problem !== undefined) throw new Error(problem);
      const id = `${definition.kind}:${definition.name}`;
      if (this.#entries.has(id)) throw new Error(`plugin ${definition.name} (${definition.kind}) is registered twice`);
      this.#entries.set(id, { definition, initialised: false, secrets: [] });
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
      entry.instance = redactingProxy(entry.definition.create({ name, logger }), this.secrets) as KindMap[K];
    }
    return entry;
  }

  /**
   * Runs Init on the named plugin and remembers that it succeeded. The values of its secret keys
   * are redacted from the logs from now on, and from the error if Init fails.
   */
  async init(kind: PluginKind, name: string, config: PluginConfig, signal: AbortSignal): Promise<void> {
    const owner = `${kind}:${name}`;
    const entry = this.#entries.get(owner);
    const attempted = entry === undefined ? [] : secretValues(config, entry.definition.configKeys ?? []);
    // Until Init settles, both the running configuration's secrets and the new ones are secret.
    if (entry !== undefined) this.secrets.set(owner, [...entry.secrets, ...attempted]);
    try {
      const found = this.#entry(kind, name);
      // A failed Init leaves the last successful configuration in effect (contract 3.6.3): the
      // plugin stays initialised; implementations check a new configuration before applying it.
      const instance = found.instance;
      if (instance === undefined) throw new StowageError(Code.Internal, `plugin ${name} has no instance`);
      await instance.init(config, { signal });
      found.initialised = true;
      found.secrets = attempted;
      this.secrets.set(owner, attempted);
    } catch (error) {
      throw redactError(error, this.secrets);
    }
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
