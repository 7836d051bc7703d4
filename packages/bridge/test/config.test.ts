import { describe, expect, it } from "vitest";
import { bridgeConfig, BridgeConfigError, DEFAULT_TLS_DIR } from "../src/config.js";

describe("bridgeConfig", () => {
  it("reads the address and takes the certificates from the cert-manager layout of the TLS directory", () => {
    const config = bridgeConfig({ STOWAGE_BRIDGE_ADDRESS: "dns:///stowage.velero.svc:7443", STOWAGE_BRIDGE_TLS_DIR: "/tls" });
    expect(config.service).toEqual({ address: "dns:///stowage.velero.svc:7443", tls: { caFile: "/tls/ca.crt", certFile: "/tls/tls.crt", keyFile: "/tls/tls.key" } });
    expect(config.plugins).toBeUndefined();
  });

  it("defaults the TLS directory, and lets each file, the server name and the plugin list be given", () => {
    const config = bridgeConfig({
      STOWAGE_BRIDGE_ADDRESS: " 10.0.0.7:7443 ",
      STOWAGE_BRIDGE_CA_FILE: "/ca/root.pem",
      STOWAGE_BRIDGE_SERVER_NAME: "stowage.velero.svc",
      STOWAGE_BRIDGE_PLUGINS: "stowage.io/aws, stowage.io/gcp,",
    });
    expect(config.service.tls).toEqual({ caFile: "/ca/root.pem", certFile: `${DEFAULT_TLS_DIR}/tls.crt`, keyFile: `${DEFAULT_TLS_DIR}/tls.key`, serverName: "stowage.velero.svc" });
    expect(config.service.address).toBe("10.0.0.7:7443");
    expect([...(config.plugins ?? [])]).toEqual(["stowage.io/aws", "stowage.io/gcp"]);
  });

  it("refuses a missing address, naming the variable", () => {
    expect(() => bridgeConfig({})).toThrow(BridgeConfigError);
    expect(() => bridgeConfig({ STOWAGE_BRIDGE_ADDRESS: " " })).toThrow(/STOWAGE_BRIDGE_ADDRESS is not set/);
  });
});
