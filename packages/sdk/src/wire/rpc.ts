/**
 * Bridges protobuf-es service descriptors and grpc-js: builds grpc-js service definitions (server
 * side) and serializers (client side) straight from the generated descriptors, so no hand-written
 * method tables exist.
 */
import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/** The full gRPC path of a method: `/package.Service/Method`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** A Buffer view of `bytes`, without copying (grpc-js wants Buffers). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Serializer for messages of `schema` (grpc-js wants Buffers). */
export function serializer<Desc extends DescMessage>(schema: Desc): (value: MessageShape<Desc>) => Buffer {
  return (value) => asBuffer(toBinary(schema, value));
}

/** Deserializer for messages of `schema`. Bytes fields are views of the received buffer. */
export function deserializer<Desc extends DescMessage>(schema: Desc): (buffer: Buffer) => MessageShape<Desc> {
  return (buffer) => fromBinary(schema, buffer);
}

/** Serializer and deserializer of a method's request and response. */
export interface MethodCodec<I extends DescMessage, O extends DescMessage> {
  readonly path: string;
  readonly serializeRequest: (value: MessageShape<I>) => Buffer;
  readonly deserializeRequest: (buffer: Buffer) => MessageShape<I>;
  readonly serializeResponse: (value: MessageShape<O>) => Buffer;
  readonly deserializeResponse: (buffer: Buffer) => MessageShape<O>;
}

/** The codec of one method. */
export function methodCodec<I extends DescMessage, O extends DescMessage>(method: DescMethod & { input: I; output: O }): MethodCodec<I, O> {
  return {
    path: methodPath(method),
    serializeRequest: serializer(method.input),
    deserializeRequest: deserializer(method.input),
    serializeResponse: serializer(method.output),
    deserializeResponse: deserializer(method.output),
  };
}

/**
 * A grpc-js service definition for `service`, keyed by each method's local (lowerCamel) name, for
 * `grpc.Server.addService`.
 */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const codec = methodCodec(method);
    definition[method.localName] = {
      path: codec.path,
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: codec.serializeRequest as (value: unknown) => Buffer,
      requestDeserialize: codec.deserializeRequest,
      responseSerialize: codec.serializeResponse as (value: unknown) => Buffer,
      responseDeserialize: codec.deserializeResponse,
    };
  }
  return definition;
}
