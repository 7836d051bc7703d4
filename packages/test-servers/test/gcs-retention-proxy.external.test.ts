import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeGcs, startGcsRetentionProxy, type FakeGcsServer, type GcsRetentionProxy } from "../src/index.js";

/** The JSON API's error body. */
interface ErrorBody {
  readonly error: { readonly code: number; readonly message: string; readonly errors: readonly { readonly reason: string; readonly message: string }[] };
}

describe("startGcsRetentionProxy", () => {
  let server: FakeGcsServer | undefined;
  let proxy: GcsRetentionProxy | undefined;
  let base = "";
  const later = (ms: number): string => new Date(Date.now() + ms).toISOString();

  const json = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`${base}${path}`, { ...init, headers: { "content-type": "application/json", ...(init.headers as Record<string, string> | undefined) } });
    const text = await response.text();
    return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  const upload = (bucket: string, name: string, metadata: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> => {
    const boundary = "proxytest";
    const body = `--${boundary}\r\ncontent-type: application/json\r\n\r\n${JSON.stringify({ name, ...metadata })}\r\n--${boundary}\r\ncontent-type: text/plain\r\n\r\nhello\r\n--${boundary}--\r\n`;
    return json(`/upload/storage/v1/b/${bucket}/o?uploadType=multipart`, { method: "POST", body, headers: { "content-type": `multipart/related; boundary=${boundary}` } });
  };

  beforeAll(async () => {
    server = await startFakeGcs();
    proxy = await startGcsRetentionProxy({ upstream: server.endpoint });
    base = proxy.endpoint;
    expect((await json("/storage/v1/b?project=p&enableObjectRetention=true", { method: "POST", body: JSON.stringify({ name: "locked" }) })).status).toBe(200);
    expect((await json("/storage/v1/b?project=p", { method: "POST", body: JSON.stringify({ name: "plain", retentionPolicy: { retentionPeriod: "60" } }) })).status).toBe(200);
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it("reports objectRetention and retentionPolicy on buckets", async () => {
    expect((await json("/storage/v1/b/locked")).body).toMatchObject({ objectRetention: { mode: "Enabled" } });
    const plain = (await json("/storage/v1/b/plain")).body;
    expect(plain.objectRetention).toBeUndefined();
    expect(plain).toMatchObject({ retentionPolicy: { retentionPeriod: "60" } });
  });

  it("keeps retention and holds, refuses deletes with Cloud Storage's 403 and enforces the patch rules", async () => {
    const until = later(3_600_000);
    const put = await upload("locked", "a", { retention: { mode: "Unlocked", retainUntilTime: until }, temporaryHold: true });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ retention: { mode: "Unlocked" }, temporaryHold: true });
    const refused = await json("/storage/v1/b/locked/o/a", { method: "DELETE" });
    expect(refused.status).toBe(403);
    const error = (refused.body as unknown as ErrorBody).error;
    expect(error.code).toBe(403);
    expect(error.errors[0]?.reason).toBe("forbidden");
    expect(error.message).toMatch(/under active Temporary hold/);
    expect((await json("/storage/v1/b/locked/o/a", { method: "PATCH", body: JSON.stringify({ temporaryHold: false }) })).body.temporaryHold).toBeUndefined();
    const retained = await json("/storage/v1/b/locked/o/a", { method: "DELETE" });
    expect(retained.status).toBe(403);
    expect((retained.body as unknown as ErrorBody).error.message).toMatch(/subject to object retention/);
    expect((await json("/storage/v1/b/locked/o/a", { method: "PATCH", body: JSON.stringify({ retention: null }) })).status).toBe(403);
    expect((await json("/storage/v1/b/locked/o/a?overrideUnlockedRetention=true", { method: "PATCH", body: JSON.stringify({ retention: null }) })).status).toBe(200);
    expect((await json("/storage/v1/b/locked/o/a")).body.retention).toBeUndefined();
    expect((await json("/storage/v1/b/locked/o/a", { method: "DELETE" })).status).toBeLessThan(300);
  });

  it("lets a Locked retention only be extended", async () => {
    expect((await upload("locked", "c", { retention: { mode: "Locked", retainUntilTime: later(3_000) } })).status).toBe(200);
    const extended = await json("/storage/v1/b/locked/o/c", { method: "PATCH", body: JSON.stringify({ retention: { mode: "Locked", retainUntilTime: later(4_000) } }) });
    expect(extended.status).toBe(200);
    const shorter = await json("/storage/v1/b/locked/o/c?overrideUnlockedRetention=true", { method: "PATCH", body: JSON.stringify({ retention: { mode: "Locked", retainUntilTime: later(2_000) } }) });
    expect(shorter.status).toBe(403);
    expect((await upload("locked", "c", {})).status).toBe(403);
  });

  it("refuses a retention in a bucket without object retention, and applies the bucket policy", async () => {
    const refused = await upload("plain", "b", { retention: { mode: "Unlocked", retainUntilTime: later(60_000) } });
    expect(refused.status).toBe(400);
    expect((refused.body as unknown as ErrorBody).error.errors[0]?.reason).toBe("invalid");
    expect((await upload("plain", "b", {})).status).toBe(200);
    expect((await json("/storage/v1/b/plain/o/b")).body.retentionExpirationTime).toEqual(expect.any(String));
    const deleted = await json("/storage/v1/b/plain/o/b", { method: "DELETE" });
    expect(deleted.status).toBe(403);
    expect((deleted.body as unknown as ErrorBody).error.message).toMatch(/subject to bucket's retention policy/);
  });
});
