/**
 * The bridge's configuration, read from the environment: a Velero server passes its own environment
 * to every plugin it starts, so the variables go on the Velero Deployment's container.
 */
import { join } from "node:path";
import type { RemotePluginService } from "@stowage/sdk/host";

/** The environment variables the bridge reads. */
export const BRIDGE_ENV = {
  /** Required: the plugin service, `dns:///name.namespace.svc:7443` (every replica), `host:port`, or a comma-separated list of `host:port`. */
  address: "STOWAGE_BRIDGE_ADDRESS",
  /** A directory holding `ca.crt`, `tls.crt` and `tls.key` (a cert-manager Secret mounted as a volume). */
  tlsDir: "STOWAGE_BRIDGE_TLS_DIR",
  /** The CA file, when not `<tls dir>/ca.crt`. */
  caFile: "STOWAGE_BRIDGE_CA_FILE",
  /** The client certificate file, when not `<tls dir>/tls.crt`. */
  certFile: "STOWAGE_BRIDGE_CERT_FILE",
  /** The client key file, when not `<tls dir>/tls.key`. */
  keyFile: "STOWAGE_BRIDGE_KEY_FILE",
  /** The name the service's certificate must carry, when not the host part of the address. */
  serverName: "STOWAGE_BRIDGE_SERVER_NAME",
  /** Plugin names to offer, separated by commas (default: every plugin the service lets this identity use). */
  plugins: "STOWAGE_BRIDGE_PLUGINS",
} as const;

/** The default of {@link BRIDGE_ENV}.tlsDir. */
export const DEFAULT_TLS_DIR = "/etc/stowage/tls";

/** What the bridge connects to, and which of its plugins it offers. */
export interface BridgeConfig {
  /** The remote plugin service. */
  readonly service: RemotePluginService;
  /** The plugin names to offer, or undefined for all. */
  readonly plugins: ReadonlySet<string> | undefined;
}

/** A configuration the bridge cannot run with; the message names the variable to fix. */
export class BridgeConfigError extends Error {
  /** Always `BridgeConfigError`. */
  override readonly name = "BridgeConfigError";
}

/**
 * Reads the bridge's configuration from `env`.
 *
 * @throws BridgeConfigError when the address is missing (the host checks its form when it connects).
 */
export function bridgeConfig(env: NodeJS.ProcessEnv): BridgeConfig {
  const address = env[BRIDGE_ENV.address]?.trim() ?? "";
  if (address === "") {
    throw new BridgeConfigError(`${BRIDGE_ENV.address} is not set: give the Stowage plugin service's address, such as dns:///stowage-plugins.velero.svc:7443, in the Velero server's environment`);
  }
  const dir = nonEmpty(env[BRIDGE_ENV.tlsDir]) ?? DEFAULT_TLS_DIR;
  const serverName = nonEmpty(env[BRIDGE_ENV.serverName]);
  const listed = nonEmpty(env[BRIDGE_ENV.plugins]);
  return {
    service: {
      address,
      tls: {
        caFile: nonEmpty(env[BRIDGE_ENV.caFile]) ?? join(dir, "ca.crt"),
        certFile: nonEmpty(env[BRIDGE_ENV.certFile]) ?? join(dir, "tls.crt"),
        keyFile: nonEmpty(env[BRIDGE_ENV.keyFile]) ?? join(dir, "tls.key"),
        ...(serverName === undefined ? {} : { serverName }),
      },
    },
    plugins:
      listed === undefined
        ? undefined
        : new Set(
            listed
              .split(",")
              .map((name) => name.trim())
              .filter((name) => name !== ""),
          ),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}
