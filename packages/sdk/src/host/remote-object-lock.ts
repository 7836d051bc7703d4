/**
 * {@link ObjectLock} over a plugin process's ObjectStoreService (contract 5.9): the three
 * object-protection RPCs, with their answers checked.
 */
import { Code, StowageError } from "../errors.js";
import { ObjectStoreService, type ObjectProtection as WireObjectProtection } from "../gen/stowage/v1/object_store_pb.js";
import type { BucketProtection, CallOptions, ObjectLock, ObjectProtection, SetLegalHoldInput, SetRetentionInput } from "../types.js";
import { protectionFromWire, retentionModeFromWire, retentionToWire, toNumber } from "../wire/convert.js";
import type { ProcessSource } from "./protocol-adapter.js";
import { checkName, checkSetLegalHoldInput, checkSetRetentionInput } from "./validate.js";

/** Whether a contract version (`MAJOR.MINOR`) defines object protection: 1.2 or a later 1.x. */
export function definesObjectLock(contractVersion: string): boolean {
  const match = /^(\d+)\.(\d+)$/.exec(contractVersion);
  return match !== null && Number(match[1]) === 1 && Number(match[2]) >= 2;
}

function answered(protection: WireObjectProtection | undefined, rpc: string): ObjectProtection {
  if (protection === undefined) throw new StowageError(Code.Internal, `the plugin answered ${rpc} without the object's protection`);
  return protectionFromWire(protection);
}

/** The object-protection RPCs of one plugin, on whichever process serves it now. */
export class RemoteObjectLock implements ObjectLock {
  readonly #processes: ProcessSource;
  readonly #plugin: string;
  readonly #defaultTimeoutMs: number;

  constructor(processes: ProcessSource, plugin: string, defaultTimeoutMs: number) {
    this.#processes = processes;
    this.#plugin = plugin;
    this.#defaultTimeoutMs = defaultTimeoutMs;
  }

  #options(options: CallOptions | undefined): CallOptions {
    return { signal: options?.signal, timeoutMs: options?.timeoutMs ?? (this.#defaultTimeoutMs > 0 ? this.#defaultTimeoutMs : undefined) };
  }

  async getBucketProtection(input: { readonly bucket: string }, options?: CallOptions): Promise<BucketProtection> {
    checkName(input.bucket, "bucket");
    const proc = await this.#processes.acquire();
    const res = await proc.channel.unary(ObjectStoreService.method.getBucketProtection, { plugin: this.#plugin, bucket: input.bucket }, this.#options(options));
    const period = res.defaultRetention;
    return {
      lockable: res.lockable,
      enforcedBy: res.enforcedBy,
      ...(period === undefined ? {} : { defaultRetention: { mode: retentionModeFromWire(period.mode), periodSeconds: toNumber(period.periodSeconds) } }),
    };
  }

  async setRetention(input: SetRetentionInput, options?: CallOptions): Promise<ObjectProtection> {
    checkSetRetentionInput(input);
    const proc = await this.#processes.acquire();
    const res = await proc.channel.unary(
      ObjectStoreService.method.setRetention,
      {
        plugin: this.#plugin,
        bucket: input.bucket,
        key: input.key,
        ...(input.retention === undefined ? {} : { retention: retentionToWire(input.retention) }),
        bypassGovernance: input.bypassGovernance === true,
      },
      this.#options(options),
    );
    return answered(res.protection, "SetRetention");
  }

  async setLegalHold(input: SetLegalHoldInput, options?: CallOptions): Promise<ObjectProtection> {
    checkSetLegalHoldInput(input);
    const proc = await this.#processes.acquire();
    const res = await proc.channel.unary(
      ObjectStoreService.method.setLegalHold,
      { plugin: this.#plugin, bucket: input.bucket, key: input.key, legalHold: input.legalHold },
      this.#options(options),
    );
    return answered(res.protection, "SetLegalHold");
  }
}
