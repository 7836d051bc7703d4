/**
 * Unit tests of the pure pieces: handshake parsing, hclog line parsing, config validation, error
 * status round trips and body verification.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import { ErrorReason } from "../src/gen/stowage/v1/errors_pb.js";
import { parseLogLine } from "../src/host/log-forward.js";
import { hclogTimestamp } from "../src/logging.js";
import { verifiedBody, rechunk } from "../src/plugin/body.js";
import { redactConfig, validateConfig } from "../src/plugin/config.js";
import { configBoolean, configInteger } from "../src/plugin/config-schema.js";
import { checkPluginName } from "../src/plugin-name.js";
import { logLevelFromArgs } from "../src/plugin/serve.js";
import { formatHandshake, parseHandshake } from "../src/protocol/handshake.js";
import { fromGrpcError, toGrpcStatus } from "../src/wire/status.js";

describe("handshake line", () => {
  it("formats go-plugin's six-field form and parses it back", () => {
    const line = formatHandshake({ core: 1, app: 1, network: "unix", address: "/tmp/x/plugin.sock" });
    expect(line).toBe("1|1|unix|/tmp/x/plugin.sock|grpc|");
    expect(parseHandshake(`${line}\r\n`, { appVersions: [1] })).toMatchObject({ core: 1, app: 1, network: "unix", address: "/tmp/x/plugin.sock", protocol: "grpc" });
  });
  it("accepts the short documented form and tcp addresses", () => {
    expect(parseHandshake("1|1|tcp|127.0.0.1:1234|grpc", { appVersions: [1] }).address).toBe("127.0.0.1:1234");
  });
  it.each([
    ["Listening on port 80", /unrecognised first line/],
    ["2|1|unix|/s|grpc|", /incompatible core protocol version "2"/],
    ["1|2|unix|/s|grpc|", /incompatible plugin protocol version "2"; this host accepts \[1\]/],
    ["1|1|pipe|/s|grpc|", /unknown address type "pipe"/],
    ["1|1|unix|/s", /unsupported plugin protocol "netrpc"/],
    ["1|1|unix||grpc|", /empty address/],
  ])("rejects %j", (line, message) => {
    expect(() => parseHandshake(line, { appVersions: [1] })).toThrow(message);
  });
});

describe("plugin stderr lines", () => {
  it("parses hclog JSON: level, message, fields, module", () => {
    expect(parseLogLine('{"@level":"WARN","@message":"slow","@module":"x/y","@timestamp":"2026-01-01T00:00:00.000000Z","key":"k"}')).toEqual({
      level: "warn",
      message: "slow",
      fields: { module: "x/y", key: "k" },
    });
  });
  it("drops logrus's own level and time keys so they cannot override the host logger's", () => {
    expect(parseLogLine('{"@level":"info","@message":"m","level":"info","time":"t","bucket":"b"}').fields).toEqual({ bucket: "b" });
  });
  it("treats unknown levels as debug and non-string messages as text", () => {
    expect(parseLogLine('{"@level":"warning","@message":"m"}').level).toBe("debug");
    expect(parseLogLine('{"@message":42}')).toMatchObject({ level: "info", message: '{"@message":42}' });
  });
  it("reads [LEVEL] prefixes and stack traces from plain text", () => {
    expect(parseLogLine("[ERROR] disk full")).toEqual({ level: "error", message: "disk full", fields: {} });
    expect(parseLogLine("panic: runtime error").level).toBe("error");
    expect(parseLogLine("TypeError: x is undefined").level).toBe("error");
  });
  it("formats hclog timestamps with six fractional digits", () => {
    expect(hclogTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)))).toBe("2026-01-02T03:04:05.678000Z");
  });
});

describe("config helpers", () => {
  const keys = [{ name: "bucket", required: true }, { name: "region" }, { name: "secretKey", secret: true }];
  it("lists invalid, missing and valid keys in one error", () => {
    try {
      validateConfig({ regoin: "x", colour: "y" }, keys);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidConfig });
      expect((error as StowageError).rawMessage).toBe(
        "config has invalid keys [colour, regoin]; config lacks required keys [bucket]; valid keys are [bucket, region, secretKey]",
      );
    }
    expect(() => validateConfig({ bucket: "b", region: "r" }, keys)).not.toThrow();
  });
  it("redacts secrets", () => {
    expect(redactConfig({ bucket: "b", secretKey: "hunter2" }, keys)).toEqual({ bucket: "b", secretKey: "[REDACTED]" });
  });
  it("parses booleans and integers strictly", () => {
    expect(configBoolean({ a: "TRUE" }, "a", false)).toBe(true);
    expect(configBoolean({}, "a", true)).toBe(true);
    expect(() => configBoolean({ a: "yes" }, "a", false)).toThrow(/must be true or false/);
    expect(configInteger({ n: "42" }, "n", 1)).toBe(42);
    expect(() => configInteger({ n: "-1" }, "n", 1)).toThrow(/non-negative integer/);
  });
  it("checks plugin names like Velero does", () => {
    expect(checkPluginName("stowage.io/local")).toBeUndefined();
    expect(checkPluginName("1.2.3.4/5678")).toBeUndefined();
    expect(checkPluginName("local")).toMatch(/<domain>\/<name>/);
    expect(checkPluginName("Stowage.io/local")).toMatch(/invalid/);
    expect(checkPluginName("a/b/c")).toMatch(/invalid/);
  });
  it("reads --log-level in both flag forms and ignores other flags", () => {
    expect(logLevelFromArgs(["--features=EnableCSI", "--log-level=debug"])).toBe("debug");
    expect(logLevelFromArgs(["--uploader-type", "kopia", "--log-level", "warning"])).toBe("warn");
    expect(logLevelFromArgs(["--log-format=json"])).toBeUndefined();
  });
});

describe("errors over gRPC", () => {
  it("round-trips code, message, reason and metadata through the status details", () => {
    const original = new StowageError(Code.NotFound, 'object "k" not found', { reason: Reason.ObjectNotFound, metadata: { key: "k" } });
    const wire = toGrpcStatus(original);
    const received: ServiceError = Object.assign(new Error(wire.details), { code: wire.code, details: wire.details, metadata: wire.metadata });
    const back = fromGrpcError(received);
    expect(back).toMatchObject({ code: Code.NotFound, reason: Reason.ObjectNotFound, metadata: { key: "k" }, rawMessage: 'object "k" not found' });
    expect(back.message).toBe('[not_found] object "k" not found');
  });
  it("carries metadata without a reason, and an empty reason reads as none", () => {
    const original = new StowageError(Code.InvalidArgument, "content_type is not a media type", { metadata: { field: "content_type" } });
    const wire = toGrpcStatus(original);
    const back = fromGrpcError(Object.assign(new Error(wire.details), { code: wire.code, details: wire.details, metadata: wire.metadata }));
    expect(back).toMatchObject({ code: Code.InvalidArgument, reason: undefined, metadata: { field: "content_type" } });
  });
  it("keeps code and message when there are no details (a Go plugin's Unknown error)", () => {
    const received: ServiceError = Object.assign(new Error("boom"), { code: status.UNKNOWN, details: "rpc failed", metadata: new Metadata() });
    expect(fromGrpcError(received)).toMatchObject({ code: Code.Unknown, reason: undefined, rawMessage: "rpc failed" });
  });
  it("normalises aborts and timeouts", () => {
    expect(StowageError.from(AbortSignal.abort().reason).code).toBe(Code.Canceled);
    expect(StowageError.from(new DOMException("late", "TimeoutError")).code).toBe(Code.DeadlineExceeded);
    expect(StowageError.from(new RangeError("x")).code).toBe(Code.Internal);
    expect(new StowageError(Code.Unavailable, "x").retryable).toBe(true);
    expect(new StowageError(Code.NotFound, "x").retryable).toBe(false);
  });
});

describe("body verification", () => {
  const data = Buffer.from("hello, stowage");
  async function consume(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  }
  it("passes a matching body and reports size and digest", async () => {
    const result = { size: 0, sha256: undefined as Uint8Array | undefined };
    const digest = createHash("sha256").update(data).digest();
    expect(await consume(verifiedBody(Readable.from([data]), { size: data.length, sha256: digest }, result))).toEqual(data);
    expect(result.size).toBe(data.length);
    expect(Buffer.from(result.sha256 ?? []).equals(digest)).toBe(true);
  });
  it.each([
    [{ size: 3 }, /longer than the announced 3 bytes/],
    [{ size: 100 }, /announced 100/],
    [{ sha256: Buffer.alloc(32) }, /SHA-256 .* differs/],
    [{ trailerSize: () => Promise.resolve(99) }, /sender reports 99/],
  ])("fails instead of ending when %o does not match", async (expect_, message) => {
    const result = { size: 0, sha256: undefined };
    await expect(consume(verifiedBody(Readable.from([data]), expect_, result))).rejects.toThrow(message);
  });
  it("splits oversized chunks into views", async () => {
    const sizes: number[] = [];
    for await (const c of rechunk(Readable.from([Buffer.alloc(10)]), 4)) sizes.push(c.byteLength);
    expect(sizes).toEqual([4, 4, 2]);
  });
});

describe("reasons", () => {
  it("Reason holds exactly the proto's ErrorReason values, without their prefix", () => {
    const fromProto = Object.keys(ErrorReason)
      .filter((name) => Number.isNaN(Number(name)) && name !== "UNSPECIFIED")
      .sort();
    expect(Object.values(Reason).sort()).toEqual(fromProto);
  });
});
