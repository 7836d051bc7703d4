/**
 * The host's guard around every ObjectStore client it hands out (docs/observability.md): a slot
 * per call within the plugin's limits, retries of idempotent calls (and of puts whose body can be
 * replayed) by the host's retry policy, and the operation's span and metrics. The client inside
 * (whichever protocol adapter made it) does the calls themselves.
 */
import { context } from "@opentelemetry/api";
import { Code, StowageError } from "../errors.js";
import { asksProtection } from "../protection.js";
import type {
  BucketProtection,
  CallOptions,
  CreateSignedUrlInput,
  DeleteObjectInput,
  GetObjectInput,
  GetObjectOutput,
  ListObjectsInput,
  ListObjectsPage,
  ObjectInfo,
  ObjectLock,
  ObjectProtection,
  ObjectRef,
  PluginConfig,
  PluginDescriptor,
  PutObjectInput,
  PutObjectResult,
  SetLegalHoldInput,
  SetRetentionInput,
  SignedUrl,
} from "../types.js";
import { GuardRunner, type Guard } from "./guard-runner.js";
import type { HostObjectStore } from "./protocol-adapter.js";

/** An ObjectStore client with limits, retries and telemetry around another. */
export class GuardedObjectStore implements HostObjectStore {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** The protocol the executable speaks. */
  readonly protocol: string;
  readonly #inner: HostObjectStore;
  readonly #run: GuardRunner;
  readonly #objectLock: ObjectLock | undefined;

  constructor(inner: HostObjectStore, guard: Guard) {
    this.#inner = inner;
    this.#run = new GuardRunner(guard);
    this.descriptor = inner.descriptor;
    this.protocol = inner.protocol;
    const lock = inner.objectLock;
    this.#objectLock =
      lock === undefined
        ? undefined
        : {
            getBucketProtection: (input: { readonly bucket: string }, options?: CallOptions): Promise<BucketProtection> =>
              this.#run.call("bucket-protection", input, options, true, () => lock.getBucketProtection(input, options)),
            setRetention: (input: SetRetentionInput, options?: CallOptions): Promise<ObjectProtection> =>
              this.#run.call("set-retention", input, options, true, () => lock.setRetention(input, options)),
            setLegalHold: (input: SetLegalHoldInput, options?: CallOptions): Promise<ObjectProtection> =>
              this.#run.call("set-legal-hold", input, options, true, () => lock.setLegalHold(input, options)),
          };
  }

  /** Object protection, when the plugin offers it (contract 5.9), guarded likewise. */
  get objectLock(): ObjectLock | undefined {
    return this.#objectLock;
  }

  init(config: PluginConfig, options?: CallOptions): Promise<void> {
    return this.#run.call("init", {}, options, true, () => this.#inner.init(config, options));
  }

  headObject(input: ObjectRef, options?: CallOptions): Promise<ObjectInfo | undefined> {
    return this.#run.call("head", input, options, true, () => this.#inner.headObject(input, options));
  }

  deleteObject(input: DeleteObjectInput, options?: CallOptions): Promise<void> {
    return this.#run.call("delete", input, options, true, () => this.#inner.deleteObject(input, options));
  }

  createSignedUrl(input: CreateSignedUrlInput, options?: CallOptions): Promise<SignedUrl> {
    return this.#run.call("signed-url", input, options, true, () => this.#inner.createSignedUrl(input, options));
  }

  /**
   * Retried only when the caller gave `retryBody` and asked no protection: a put whose answer was
   * lost may have stored its object, and a protected object could not be stored again.
   */
  putObject(input: PutObjectInput, options?: CallOptions): Promise<PutObjectResult> {
    const replay = input.retryBody;
    const retry = replay !== undefined && !asksProtection(input.protection);
    return this.#run.call("put", input, options, retry, (n) => this.#inner.putObject(n === 1 || replay === undefined ? input : { ...input, body: replay() }, options), (stored) => stored.size);
  }

  /** Retried until its header arrives, never once bytes reached the caller; the slot is held until the body ends. */
  async getObject(input: GetObjectInput, options?: CallOptions): Promise<GetObjectOutput> {
    const scope = this.#run.start("get", input, options);
    return context.with(scope.context, async () => {
      let release: (() => void) | undefined;
      try {
        release = await this.#run.slot(scope, options?.signal);
        const out = await this.#run.attempts(scope, options, true, () => this.#inner.getObject(input, options));
        const done = release;
        release = undefined;
        let complete = false;
        out.body.once("end", () => {
          complete = true;
        });
        out.body.once("close", () => {
          done();
          if (complete) scope.end(undefined, out.contentLength >= 0 ? out.contentLength : undefined);
          else scope.end(out.body.errored ?? new StowageError(Code.Canceled, "the caller stopped reading the body"));
        });
        return out;
      } catch (error) {
        scope.end(error);
        throw error;
      } finally {
        release?.();
      }
    });
  }

  /** Retried until the first page arrives; the slot is held until the iteration ends. */
  async *listObjects(input: ListObjectsInput, options?: CallOptions): AsyncGenerator<ListObjectsPage, void, undefined> {
    const scope = this.#run.start("list", input, options);
    let release: (() => void) | undefined;
    let failure: unknown;
    let pages: AsyncGenerator<ListObjectsPage, void, undefined> | undefined;
    try {
      release = await context.with(scope.context, () => this.#run.slot(scope, options?.signal));
      const first = await context.with(scope.context, () =>
        this.#run.attempts(scope, options, true, async () => {
          await pages?.return();
          pages = this.#inner.listObjects(input, options);
          return pages.next();
        }),
      );
      const iterator = pages;
      if (first.done === true || iterator === undefined) return;
      yield first.value;
      for (;;) {
        const next = await context.with(scope.context, () => iterator.next());
        if (next.done === true) return;
        yield next.value;
      }
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      // A caller that stopped early ends the plugin's stream too.
      await pages?.return().catch(() => undefined);
      release?.();
      scope.end(failure);
    }
  }
}
