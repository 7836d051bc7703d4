#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `stowage-plugin-gcp` executable: serves the Cloud Storage ObjectStore and the Persistent Disk BlockStore plugins to a
 * Stowage host (or Velero) over the plugin protocol.
 *
 * @packageDocumentation
 */
import { serve } from "@stowage/sdk/plugin";
import { gcpPlugins } from "./plugins.js";

await serve({ plugins: gcpPlugins });
