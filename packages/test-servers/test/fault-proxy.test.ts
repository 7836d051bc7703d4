import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy, type FaultProxy } from "../src/fault-proxy.js";

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One GET through the proxy on a fresh connection; rejects when the connection breaks. */
function get(proxy: FaultProxy, path: string, timeoutMs = 5000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${proxy.endpoint}${path}`, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.once("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.once("error", reject);
      res.once("aborted", () => reject(new Error("aborted")));
    });
    req.once("timeout", () => req.destroy(new Error("timeout")));
    req.once("error", reject);
    req.end();
  });
}

describe("fault proxy", () => {
  let upstream: Server;
  let proxy: FaultProxy;
  const big = "x".repeat(256 * 1024);

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      if (req.url === "/big") res.end(big);
      else res.end(`host=${req.headers.host ?? ""} path=${req.url ?? ""}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    proxy = await startFaultProxy({ upstream: `http://127.0.0.1:${String((upstream.address() as AddressInfo).port)}` });
  });

  afterAll(async () => {
    await proxy.stop();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it("forwards unchanged, the Host header included", async () => {
    proxy.resetCounts();
    const answer = await get(proxy, "/a?b=c");
    expect(answer.body).toBe(`host=${new URL(proxy.endpoint).host} path=/a?b=c`);
    expect(proxy.requests).toMatchObject([{ method: "GET", path: "/a?b=c", fault: "forwarded" }]);
  });

  it("answers the next N requests 503 SlowDown with Retry-After, then forwards", async () => {
    proxy.resetCounts();
    proxy.slowDownNext = 2;
    proxy.retryAfterSeconds = 3;
    const first = await get(proxy, "/k");
    expect(first.status).toBe(503);
    expect(first.headers["retry-after"]).toBe("3");
    expect(first.body).toContain("<Error><Code>SlowDown</Code>");
    expect((await get(proxy, "/k")).status).toBe(503);
    expect((await get(proxy, "/k")).status).toBe(200);
    expect(proxy.requests.map((r) => r.fault)).toEqual(["slow-down", "slow-down", "forwarded"]);
  });

  it("answers the next N requests a predicate takes 503, others pass", async () => {
    proxy.resetCounts();
    proxy.slowDownWhere((r) => r.path === "/t", 1);
    expect((await get(proxy, "/u")).status).toBe(200);
    expect((await get(proxy, "/t")).status).toBe(503);
    expect((await get(proxy, "/t")).status).toBe(200);
  });

  it("resets the next N connections, and a fraction of them", async () => {
    proxy.resetCounts();
    proxy.resetNext = 1;
    await expect(get(proxy, "/r")).rejects.toThrow();
    expect((await get(proxy, "/r")).status).toBe(200);
    proxy.resetFraction = 1;
    await expect(get(proxy, "/r")).rejects.toThrow();
    proxy.resetFraction = 0;
    expect(proxy.requests.map((r) => r.fault)).toEqual(["reset", "forwarded", "reset"]);
  });

  it("resets after some bytes of the answer's body", async () => {
    proxy.resetCounts();
    proxy.resetNextAfterBytes = 1;
    proxy.resetAfterBytes = 1000;
    await expect(get(proxy, "/big")).rejects.toThrow();
    expect((await get(proxy, "/big")).body).toBe(big);
  });

  it("holds requests in a black hole and forwards them once it closes; counts those in flight", async () => {
    proxy.resetCounts();
    proxy.blackHole = true;
    const held = [get(proxy, "/h1"), get(proxy, "/h2"), get(proxy, "/h3")];
    await expect(get(proxy, "/h4", 300)).rejects.toThrow("timeout");
    expect(proxy.maxInFlight).toBe(4);
    proxy.blackHole = false;
    expect((await Promise.all(held)).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(proxy.maxInFlight).toBe(4);
    expect(proxy.inFlight).toBe(0);
  });

  it("adds latency", async () => {
    proxy.resetCounts();
    proxy.latencyMs = 50;
    expect((await get(proxy, "/l")).status).toBe(200);
    expect(proxy.requests).toHaveLength(1);
  });
});
