/**
 * A Prometheus endpoint for the host's OpenTelemetry metrics: a global `MeterProvider` whose only
 * reader is the Prometheus exporter, served on loopback. The SDK itself depends only on
 * `@opentelemetry/api`; the application (here, the example) chooses the SDK and the exporter.
 *
 * @packageDocumentation
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** Where Prometheus scrapes, `http://127.0.0.1:<port>/metrics` (the bound port when 0 was asked). */
  readonly url: string;
  /** Stops serving, shuts the meter provider down and removes it as the global one. */
  close(): Promise<void>;
}

/**
 * Installs a global `MeterProvider` exporting to Prometheus and serves `GET /metrics` on
 * `host:port` (`port` 0 picks a free one). Install it before the plugin host starts so every
 * instrument reports from the first call. Fails when another global meter provider is installed.
 */
export async function serveMetrics(port: number, host = "127.0.0.1"): Promise<MetricsEndpoint> {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`metrics port ${String(port)}: use 0 to 65535`);
  // The exporter's own server cannot report an ephemeral port; serve its handler from ours.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  if (!metrics.setGlobalMeterProvider(provider)) {
    await provider.shutdown();
    throw new Error("a global OpenTelemetry meter provider is already installed; the metrics endpoint needs its own");
  }
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (request.method === "GET" && path === "/metrics") {
      exporter.getMetricsRequestHandler(request, response);
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" }).end("not found: scrape /metrics\n");
  });
  try {
    server.listen(port, host);
    await once(server, "listening");
  } catch (error) {
    metrics.disable();
    await provider.shutdown();
    throw error;
  }
  const bound = server.address() as AddressInfo;
  const shown = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${shown}:${String(bound.port)}/metrics`,
    close() {
      closed ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await stopped;
        metrics.disable();
        await provider.shutdown();
      })();
      return closed;
    },
  };
}
