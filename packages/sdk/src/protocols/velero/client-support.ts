/**
 * What Velero's ObjectStore and BlockStore clients share: call options with the host's default
 * deadline, Velero's error shape, and Init tracking across plugin restarts.
 */
import { Code, Reason, StowageError } from "../../errors.js";
import type { LaunchedProcess, ProcessSource } from "../../host/protocol-adapter.js";
import type { RpcChannel } from "../../host/rpc-channel.js";
import { checkCallOptions } from "../../host/validate.js";
import type { CallOptions, PluginConfig } from "../../types.js";
import { fromVeleroError } from "./errors.js";

/** The error for what Velero's protocol cannot carry. */
export function unsupported(what: string): StowageError {
  return new StowageError(Code.Unimplemented, `${what} is not offered by Velero plugins`, { reason: Reason.Unsupported });
}

/** Checks call options and applies the host's default deadline. */
export function withDefault(options: CallOptions | undefined, timeoutMs: number): CallOptions {
  checkCallOptions(options);
  return { signal: options?.signal, timeoutMs: options?.timeoutMs ?? (timeoutMs > 0 ? timeoutMs : undefined) };
}

/**
 * Re-runs Init on a freshly (re)started process before the first other call, as Velero's
 * restartable wrappers do; the supervisor's own Init replay speaks Stowage's services only.
 */
export class InitTracker {
  readonly #supervisor: ProcessSource;
  readonly #init: (proc: LaunchedProcess, config: PluginConfig, options: CallOptions) => Promise<void>;
  /** The processes that have the current configuration (a pool has several). */
  #done = new WeakSet<LaunchedProcess>();
  #config: PluginConfig | undefined;

  constructor(supervisor: ProcessSource, init: (proc: LaunchedProcess, config: PluginConfig, options: CallOptions) => Promise<void>) {
    this.#supervisor = supervisor;
    this.#init = init;
  }

  async init(config: PluginConfig, options: CallOptions): Promise<void> {
    const proc = await this.#supervisor.acquire();
    try {
      await this.#init(proc, config, options);
    } catch (error) {
      throw initError(error);
    }
    this.#config = { ...config };
    // The other processes of a pool still have the previous configuration: each gets this one before its next call.
    this.#done = new WeakSet([proc]);
  }

  async channel(options: CallOptions): Promise<RpcChannel> {
    if (this.#config === undefined) {
      // Velero plugins are never called before Init; Go implementations typically dereference nil then.
      throw new StowageError(Code.FailedPrecondition, "call init first: Velero plugins must be initialised before any other call", { reason: Reason.NotInitialized });
    }
    const proc = await this.#supervisor.acquire();
    if (this.#config !== undefined && !this.#done.has(proc)) {
      await this.#init(proc, this.#config, options);
      this.#done.add(proc);
    }
    return proc.channel;
  }
}

/**
 * Velero's framework validates config keys with a fixed message ("config has invalid keys [..];
 * valid keys are [..]"); that one is recognisably INVALID_CONFIG. Other Init failures stay as they are.
 */
function initError(error: unknown): StowageError {
  const converted = fromVeleroError(error);
  const m = /config has invalid keys \[([^\]]*)\]; valid keys are \[([^\]]*)\]/.exec(converted.rawMessage);
  if (converted.code !== Code.Unknown || m === null) return converted;
  // Contract 4.3.3: names separated by commas, sorted (Velero lists the valid keys in declaration order).
  const list = (text: string | undefined): string =>
    (text ?? "")
      .split(/[\s,]+/)
      .filter((k) => k !== "")
      .sort()
      .join(",");
  return new StowageError(Code.InvalidArgument, converted.rawMessage, {
    reason: Reason.InvalidConfig,
    metadata: { ...converted.metadata, invalid_keys: list(m[1]), valid_keys: list(m[2]) },
    cause: converted,
  });
}

/** Runs a call, turning its failure into a StowageError with Velero's details decoded. */
export async function veleroCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw fromVeleroError(error);
  }
}
