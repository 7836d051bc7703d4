/**
 * An IAM token endpoint (or a proxy in front of it) that echoes the request back: the API key it
 * carried must appear in no error and no log line, whatever the endpoint answers.
 */
import { StowageError, createHclogLogger } from "@stowage/sdk";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IamTokenManager } from "./iam.js";
import { createIbmCosObjectStore } from "./plugins.js";

const MARKER = `ibm-api-key-${Math.random().toString(36).slice(2)}-marker`;

/** Answers every request with `status` and a body that repeats the request (headers and body). */
function echoServer(status: () => number): Server {
  return createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      // The request's body first, as an echoing proxy puts it (a quote of the first bytes would show it).
      const echoed = `${Buffer.concat(parts).toString("utf8")}\n${req.method ?? ""} ${req.url ?? ""}\n${JSON.stringify(req.headers)}`;
      const code = status();
      // A 200 that is no JSON, or an error with the request in a JSON field, as proxies do.
      const body = code === 200 ? echoed : JSON.stringify({ errorCode: "BXNIM0415E", errorMessage: echoed, context: { requestBody: echoed } });
      res.writeHead(code, { "content-type": code === 200 ? "text/plain" : "application/json" }).end(body);
    });
  });
}

/** Every string the error carries: message, metadata and causes. */
function textOf(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    parts.push(current.message, current.stack ?? "");
    if (current instanceof StowageError) parts.push(JSON.stringify(current.metadata));
    current = current.cause;
  }
  return parts.join("\n");
}

describe("an IAM endpoint that echoes the request", () => {
  let server: Server;
  let url: string;
  let status = 400;

  beforeAll(async () => {
    server = echoServer(() => status);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/identity/token`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("never quotes its answer in the token manager's errors (400, 401, 500, a 200 that is no JSON)", async () => {
    for (const code of [400, 401, 500, 200]) {
      status = code;
      const manager = new IamTokenManager({ apiKey: MARKER, endpoint: url });
      let caught: unknown;
      try {
        await manager.token();
      } catch (error) {
        caught = error;
      }
      expect(caught, `HTTP ${String(code)}`).toBeInstanceOf(StowageError);
      expect(textOf(caught)).not.toContain(MARKER);
      expect((caught as StowageError).message).toContain(code === 200 ? "invalid JSON" : `HTTP ${String(code)}`);
    }
  });

  it("keeps the API key out of Init's error and the store's log", async () => {
    status = 400;
    const lines: string[] = [];
    const logger = createHclogLogger({ level: "trace", destination: { write: (line: string) => lines.push(line) } });
    const store = createIbmCosObjectStore(logger);
    let caught: unknown;
    try {
      await store.init({ apiKey: MARKER, iamEndpoint: url, s3Url: url.replace("/identity/token", "") });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StowageError);
    expect(textOf(caught)).not.toContain(MARKER);
    expect(lines.join("")).not.toContain(MARKER);
  });
});
