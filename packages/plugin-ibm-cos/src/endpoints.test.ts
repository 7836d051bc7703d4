import { describe, expect, it } from "vitest";
import { ibmCosEndpoint } from "./endpoints.js";

describe("IBM COS endpoints", () => {
  it("resolves regional, cross-region and single-site locations for each endpoint type", () => {
    expect(ibmCosEndpoint("us-south")).toBe("https://s3.us-south.cloud-object-storage.appdomain.cloud");
    expect(ibmCosEndpoint("eu-de", "private")).toBe("https://s3.private.eu-de.cloud-object-storage.appdomain.cloud");
    expect(ibmCosEndpoint("jp-tok", "direct")).toBe("https://s3.direct.jp-tok.cloud-object-storage.appdomain.cloud");
    expect(ibmCosEndpoint("us-geo")).toBe("https://s3.us.cloud-object-storage.appdomain.cloud");
    expect(ibmCosEndpoint("us-geo", "direct")).toBe("https://s3.direct.us.cloud-object-storage.appdomain.cloud");
    expect(ibmCosEndpoint("eu-geo", "private")).toBe("https://s3.private.eu.cloud-object-storage.appdomain.cloud");
    expect(ibmCosEndpoint("ap-geo")).toBe("https://s3.ap.cloud-object-storage.appdomain.cloud");
    expect(ibmCosEndpoint("ams03")).toBe("https://s3.ams03.cloud-object-storage.appdomain.cloud");
  });
});
