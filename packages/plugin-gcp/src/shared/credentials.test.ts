import { Reason, StowageError } from "@stowage/sdk";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { impersonatedEmail, loadGoogleCredentials, METADATA_SERVER_CREDENTIALS, parseCredentialsJson } from "./credentials.js";

describe("loadGoogleCredentials", () => {
  let dir: string;
  const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "stowage-gcp-credentials-"));
  });

  afterAll(async () => {
    if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it("loads a service-account key: email, key, project, and self-signed JWTs", async () => {
    const pem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const file = join(dir, "sa.json");
    await writeFile(file, JSON.stringify({ type: "service_account", project_id: "p1", client_email: "sa@p1.iam.gserviceaccount.com", private_key: pem, private_key_id: "kid" }));
    const loaded = await loadGoogleCredentials({ credentialsFile: file });
    expect(loaded).toMatchObject({ type: "service_account", projectId: "p1", clientEmail: "sa@p1.iam.gserviceaccount.com", privateKey: pem.trim(), privateKeyId: "kid", source: file });
    const headers = await loaded.auth.getRequestHeaders("https://storage.googleapis.com/storage/v1/b");
    const token = headers.get("authorization")?.slice("Bearer ".length) ?? "";
    const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString()) as { kid?: string };
    expect(header.kid).toBe("kid");
    expect(await loaded.auth.getProjectId()).toBe("p1");
  });

  it("reads the impersonated account of external_account (workload identity federation) and impersonated_service_account files", async () => {
    const url = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/velero%40p.iam.gserviceaccount.com:generateAccessToken";
    expect(impersonatedEmail(url)).toBe("velero@p.iam.gserviceaccount.com");
    const tokenFile = join(dir, "oidc-token");
    await writeFile(tokenFile, "header.payload.signature");
    const file = join(dir, "federated.json");
    await writeFile(
      file,
      JSON.stringify({
        type: "external_account",
        audience: "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/provider",
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
        token_url: "https://sts.googleapis.com/v1/token",
        service_account_impersonation_url: url,
        credential_source: { file: tokenFile },
      }),
    );
    const loaded = await loadGoogleCredentials({ credentialsFile: file });
    expect(loaded.type).toBe("external_account");
    expect(loaded.clientEmail).toBe("velero@p.iam.gserviceaccount.com");
    expect(loaded.privateKey).toBeUndefined();
  });

  it("uses GOOGLE_APPLICATION_CREDENTIALS when no file is configured, and names it in errors", async () => {
    const file = join(dir, "adc.json");
    await writeFile(file, "[]");
    process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
    try {
      await loadGoogleCredentials({});
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
      expect((error as StowageError).metadata.key).toBe("GOOGLE_APPLICATION_CREDENTIALS");
    }
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    expect((await loadGoogleCredentials({})).type).toBe(METADATA_SERVER_CREDENTIALS);
  });

  it("refuses a file of another universe than universeDomain", async () => {
    const file = join(dir, "universe.json");
    await writeFile(file, JSON.stringify({ type: "authorized_user", client_id: "a", client_secret: "b", refresh_token: "c", universe_domain: "example.com" }));
    await expect(loadGoogleCredentials({ credentialsFile: file, universeDomain: "googleapis.com" })).rejects.toThrow(/universe "example.com"/);
  });

  it("explains malformed content", () => {
    expect(() => parseCredentialsJson("nope", "credentialsFile \"x\"")).toThrow(/not valid JSON/);
    expect(() => parseCredentialsJson("{}", "credentialsFile \"x\"")).toThrow(/no "type" field/);
    expect(() => parseCredentialsJson(JSON.stringify({ type: "authorized_user" }), "credentialsFile \"x\"")).not.toThrow();
  });
});
