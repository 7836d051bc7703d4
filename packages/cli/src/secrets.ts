/**
 * Keeping secrets out of the CLI's output: the values given with `--config` for keys the chosen
 * plugin marks `secret` are redacted from every error message and host log line the command
 * prints, whatever echoed them.
 *
 * @packageDocumentation
 */
import { SecretRedactor, type PluginConfig, type PluginKind } from "@stowage/sdk";
import type { PluginHost } from "@stowage/sdk/host";

/** The secrets of this command's `--config` values. */
export const cliSecrets = new SecretRedactor();

/**
 * Registers the values of the keys that `provider` (of `kind`) marks secret. A plugin the host
 * does not serve has no descriptor: then every value is treated as secret, since nothing says
 * which are not.
 */
export function registerSecrets(host: PluginHost, kind: PluginKind, provider: string, config: PluginConfig): void {
  const descriptor = host.plugins().find((p) => p.descriptor.kind === kind && p.descriptor.name === provider)?.descriptor;
  const secret = descriptor === undefined ? undefined : new Set(descriptor.configKeys.filter((k) => k.secret === true).map((k) => k.name));
  cliSecrets.set(`${kind}:${provider}`, Object.entries(config).flatMap(([k, v]) => (secret === undefined || secret.has(k) ? [v] : [])));
}
