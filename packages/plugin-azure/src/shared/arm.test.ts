import { Reason, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { armClientOptions, armClientSettings, configHttpsUrl } from "./arm.js";
import { resolveCloud } from "./credentials.js";

describe("Resource Manager client settings", () => {
  it("uses the cloud's endpoint and audience unless resourceManagerEndpoint overrides the endpoint", () => {
    const gov = armClientSettings(resolveCloud("AzureUSGovernment"), {});
    expect(gov.endpoint).toBe("https://management.usgovcloudapi.net");
    expect(gov.scope).toBe("https://management.core.usgovcloudapi.net/.default");
    const overridden = armClientSettings(resolveCloud(), { endpointOverride: "https://127.0.0.1:8443/", maxRetries: 0 });
    expect(overridden.endpoint).toBe("https://127.0.0.1:8443");
    // The token audience stays the cloud's: only the endpoint moves.
    expect(overridden.scope).toBe("https://management.core.windows.net/.default");
    const options = armClientOptions(overridden);
    expect(options.credentials.scopes).toEqual(["https://management.core.windows.net/.default"]);
    expect(options.retryOptions.maxRetries).toBe(0);
    expect(options.tlsOptions).toBeUndefined();
    const withCa = armClientOptions(armClientSettings(resolveCloud(), { caCert: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----" }));
    expect(withCa.tlsOptions?.ca.at(-1)).toContain("BEGIN CERTIFICATE");
    expect(withCa.tlsOptions?.ca.length).toBeGreaterThan(1);
  });

  it("accepts only https endpoints, naming the key", () => {
    expect(configHttpsUrl({}, "resourceManagerEndpoint")).toBeUndefined();
    expect(configHttpsUrl({ resourceManagerEndpoint: " https://arm.example/ " }, "resourceManagerEndpoint")).toBe("https://arm.example");
    for (const bad of ["http://arm.example", "not a url"]) {
      try {
        configHttpsUrl({ resourceManagerEndpoint: bad }, "resourceManagerEndpoint");
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(StowageError);
        expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
        expect((error as StowageError).metadata.key).toBe("resourceManagerEndpoint");
      }
    }
  });
});
