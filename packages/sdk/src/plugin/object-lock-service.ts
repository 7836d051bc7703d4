/**
 * The object-protection RPCs of stowage.v1.ObjectStoreService (contract 5.9) on top of
 * {@link ObjectLock} implementations, and the checks PutObject and DeleteObject make of their
 * protection fields.
 */
import { create } from "@bufbuild/protobuf";
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import {
  GetBucketProtectionResponseSchema,
  SetLegalHoldResponseSchema,
  SetRetentionResponseSchema,
  type GetBucketProtectionRequest,
  type GetBucketProtectionResponse,
  type ObjectProtection as WireObjectProtection,
  type SetLegalHoldRequest,
  type SetLegalHoldResponse,
  type SetRetentionRequest,
  type SetRetentionResponse,
} from "../gen/stowage/v1/object_store_pb.js";
import { checkRetention } from "../protection.js";
import type { ObjectLock, ObjectStore, PluginDescriptor, ProtectionInput } from "../types.js";
import { protectionToWire, retentionFromWire, retentionModeToWire } from "../wire/convert.js";
import { handleUnary, type ServiceDeps, requireNonEmpty } from "./handler.js";
import type { RegistryLookup, ServiceCall } from "./protocol-adapter.js";

const KIND = "object-store";

function unsupported(plugin: string, what: string): StowageError {
  return new StowageError(Code.Unimplemented, `plugin ${plugin} does not announce CAPABILITY_OBJECT_LOCK; ${what}`, { reason: Reason.Unsupported });
}

/** Which of the served plugins announce `OBJECT_LOCK`. */
export function lockingPlugins(descriptors: readonly PluginDescriptor[]): ReadonlySet<string> {
  return new Set(descriptors.filter((d) => d.kind === KIND && d.capabilities.includes("OBJECT_LOCK")).map((d) => d.name));
}

/**
 * The protection a PutObject header asks for, checked (clause 5.9.4): refused with `UNSUPPORTED`
 * by a plugin without the capability, never silently dropped.
 */
export function putProtection(plugin: string, store: ObjectStore, locking: ReadonlySet<string>, wire: WireObjectProtection | undefined): ProtectionInput | undefined {
  if (wire === undefined) return undefined;
  const retention = retentionFromWire(wire.retention);
  if (retention === undefined && !wire.legalHold) return undefined;
  if (!locking.has(plugin) || store.objectLock === undefined) throw unsupported(plugin, "it cannot store a protected object");
  checkRetention(retention);
  return { ...(retention === undefined ? {} : { retention }), legalHold: wire.legalHold };
}

/** The three object-protection handlers, merged into the ObjectStoreService implementation. */
export function objectLockService(registryFor: RegistryLookup, descriptors: readonly PluginDescriptor[], deps: ServiceDeps): UntypedServiceImplementation {
  const locking = lockingPlugins(descriptors);

  /** The named plugin's object lock; UNSUPPORTED without the capability (clause 5.9.1). */
  const lock = (call: ServiceCall, plugin: string): ObjectLock => {
    const store = registryFor(call).get(KIND, plugin);
    if (!locking.has(plugin) || store.objectLock === undefined) throw unsupported(plugin, "its objects cannot be protected");
    return store.objectLock;
  };

  return {
    getBucketProtection(call: ServerUnaryCall<GetBucketProtectionRequest, GetBucketProtectionResponse>, callback: sendUnaryData<GetBucketProtectionResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        const found = await lock(call, req.plugin).getBucketProtection({ bucket: req.bucket }, { signal });
        const period = found.defaultRetention;
        if (period !== undefined && !(Number.isSafeInteger(period.periodSeconds) && period.periodSeconds >= 1)) {
          throw new StowageError(Code.Internal, `the plugin reported a default retention of ${String(period.periodSeconds)} seconds`);
        }
        return create(GetBucketProtectionResponseSchema, {
          lockable: found.lockable,
          enforcedBy: found.enforcedBy,
          ...(period === undefined ? {} : { defaultRetention: { mode: retentionModeToWire(period.mode), periodSeconds: BigInt(period.periodSeconds) } }),
        });
      });
    },

    setRetention(call: ServerUnaryCall<SetRetentionRequest, SetRetentionResponse>, callback: sendUnaryData<SetRetentionResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const objectLock = lock(call, req.plugin);
        const retention = retentionFromWire(req.retention);
        checkRetention(retention);
        const protection = await objectLock.setRetention({ bucket: req.bucket, key: req.key, retention, bypassGovernance: req.bypassGovernance }, { signal });
        return create(SetRetentionResponseSchema, { protection: protectionToWire(protection) });
      });
    },

    setLegalHold(call: ServerUnaryCall<SetLegalHoldRequest, SetLegalHoldResponse>, callback: sendUnaryData<SetLegalHoldResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const protection = await lock(call, req.plugin).setLegalHold({ bucket: req.bucket, key: req.key, legalHold: req.legalHold }, { signal });
        return create(SetLegalHoldResponseSchema, { protection: protectionToWire(protection) });
      });
    },
  };
}
