import { ClientCertificateCredential, ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential } from "@azure/identity";
import { Reason, StowageError } from "@stowage/sdk";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startArmComputeDouble, type ArmComputeDouble } from "../../test/support/arm-compute-double.js";
import { createTokenCredential, loadCredentialsFile, parseDotenv, resolveCloud, tokenCredentialKind } from "./credentials.js";

let dir: string;
let double: ArmComputeDouble;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-azure-credentials-"));
  double = await startArmComputeDouble();
});

afterAll(async () => {
  await double.stop();
  await rm(dir, { recursive: true, force: true });
});

const sp = { AZURE_TENANT_ID: "11111111-1111-4111-8111-111111111111", AZURE_CLIENT_ID: "22222222-2222-4222-8222-222222222222" };

describe("dotenv credentials file", () => {
  it("parses comments, export, quotes, escapes and empty values", () => {
    const text = [
      "# Velero credentials",
      "export AZURE_SUBSCRIPTION_ID=sub-1",
      "AZURE_RESOURCE_GROUP = rg  # trailing comment",
      "AZURE_CLIENT_SECRET='a#b c'",
      'AZURE_CLIENT_CERTIFICATE="-----BEGIN CERTIFICATE-----\\nabc\\n-----END CERTIFICATE-----"',
      "AZURE_EMPTY=",
      "not an assignment",
      "AZURE_CLOUD_NAME=AzureChinaCloud\r",
    ].join("\n");
    expect(parseDotenv(text)).toEqual({
      AZURE_SUBSCRIPTION_ID: "sub-1",
      AZURE_RESOURCE_GROUP: "rg",
      AZURE_CLIENT_SECRET: "a#b c",
      AZURE_CLIENT_CERTIFICATE: "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----",
      AZURE_EMPTY: "",
      AZURE_CLOUD_NAME: "AzureChinaCloud",
    });
  });

  it("reads the explicit file, falls back to AZURE_CREDENTIALS_FILE, and explains a missing explicit file", async () => {
    const file = join(dir, "cloud");
    await writeFile(file, "AZURE_SUBSCRIPTION_ID=s\n");
    expect(await loadCredentialsFile(file, {})).toEqual({ AZURE_SUBSCRIPTION_ID: "s" });
    expect(await loadCredentialsFile(undefined, { AZURE_CREDENTIALS_FILE: file })).toEqual({ AZURE_SUBSCRIPTION_ID: "s" });
    expect(await loadCredentialsFile(undefined, { AZURE_CREDENTIALS_FILE: join(dir, "absent") })).toEqual({});
    expect(await loadCredentialsFile(undefined, {})).toEqual({});
    const error = await loadCredentialsFile(join(dir, "absent"), {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StowageError);
    expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
    expect((error as StowageError).message).toContain("does not exist");
  });
});

describe("clouds", () => {
  it("resolves the three clouds by any of their names, and refuses others", () => {
    expect(resolveCloud().resourceManagerEndpoint).toBe("https://management.azure.com");
    expect(resolveCloud("azurechinacloud")).toMatchObject({ authorityHost: "https://login.chinacloudapi.cn/", storageEndpointSuffix: "core.chinacloudapi.cn" });
    expect(resolveCloud("AzureUSGovernment").resourceManagerEndpoint).toBe("https://management.usgovcloudapi.net");
    expect(resolveCloud("AzureUSGovernmentCloud").name).toBe("AzureUSGovernmentCloud");
    expect(resolveCloud("AzurePublicCloud", "https://login.example.com").authorityHost).toBe("https://login.example.com/");
    expect(() => resolveCloud("AzureGermanCloud")).toThrow(/AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud/);
    expect(() => resolveCloud(undefined, "http://login.example.com")).toThrow(/https/);
  });
});

describe("token credential selection (Velero's order, from the values only)", () => {
  it("picks secret, certificate, workload identity, then managed identity", () => {
    expect(createTokenCredential({ ...sp, AZURE_CLIENT_SECRET: "s" }, { env: {} })).toBeInstanceOf(ClientSecretCredential);
    expect(createTokenCredential({ ...sp, AZURE_CLIENT_CERTIFICATE_PATH: "/no/such.pem" }, { env: {} })).toBeInstanceOf(ClientCertificateCredential);
    expect(createTokenCredential(sp, { env: { AZURE_FEDERATED_TOKEN_FILE: "/var/run/token" } })).toBeInstanceOf(WorkloadIdentityCredential);
    expect(createTokenCredential({ AZURE_CLIENT_ID: sp.AZURE_CLIENT_ID }, { env: {} })).toBeInstanceOf(ManagedIdentityCredential);
    expect(createTokenCredential({}, { env: {} })).toBeInstanceOf(ManagedIdentityCredential);
    expect(tokenCredentialKind({ ...sp, AZURE_CLIENT_SECRET: "s" }, { AZURE_FEDERATED_TOKEN_FILE: "/t" })).toBe("client-secret");
  });

  it("refuses incomplete service principals and username/password, naming what is missing", () => {
    expect(() => createTokenCredential({ AZURE_CLIENT_SECRET: "s", AZURE_CLIENT_ID: "c" }, { env: {} })).toThrow(/AZURE_TENANT_ID/);
    expect(() => createTokenCredential({ ...sp, AZURE_USERNAME: "u", AZURE_PASSWORD: "p" }, { env: {} })).toThrow(/not supported/);
    expect(() => createTokenCredential({ ...sp, AZURE_CLIENT_CERTIFICATE: "MIIbase64pkcs12" }, { env: {} })).toThrow(/PEM/);
    expect(() => createTokenCredential({}, { env: { AZURE_FEDERATED_TOKEN_FILE: "/t" } })).toThrow(/AZURE_TENANT_ID and AZURE_CLIENT_ID/);
  });

  it("gets a token from a private authority over HTTPS with caCert, and fails on a wrong secret", async () => {
    const values = { AZURE_TENANT_ID: double.tenantId, AZURE_CLIENT_ID: double.clientId, AZURE_CLIENT_SECRET: double.clientSecret };
    const credential = createTokenCredential(values, { authorityHost: double.authorityHost, caCert: double.caCert, env: {} });
    const token = await credential.getToken("https://management.core.windows.net//.default");
    expect(token?.token).toMatch(/^tok-/);
    const wrong = createTokenCredential({ ...values, AZURE_CLIENT_SECRET: "wrong" }, { authorityHost: double.authorityHost, caCert: double.caCert, env: {} });
    await expect(wrong.getToken("https://management.core.windows.net//.default")).rejects.toThrow(/AADSTS7000215/);
  });

  it("exchanges the federated token file for a token with workload identity", async () => {
    const tokenFile = join(dir, "azure-identity-token");
    await writeFile(tokenFile, double.federatedToken);
    const env = { AZURE_FEDERATED_TOKEN_FILE: tokenFile, AZURE_TENANT_ID: double.tenantId, AZURE_CLIENT_ID: double.clientId };
    const credential = createTokenCredential({}, { authorityHost: double.authorityHost, caCert: double.caCert, env });
    expect(credential).toBeInstanceOf(WorkloadIdentityCredential);
    expect((await credential.getToken("https://management.core.windows.net//.default"))?.token).toMatch(/^tok-/);
    await writeFile(tokenFile, "someone-else");
    const other = createTokenCredential({}, { authorityHost: double.authorityHost, caCert: double.caCert, env });
    await expect(other.getToken("https://management.core.windows.net//.default")).rejects.toThrow(/AADSTS700213/);
  });
});
