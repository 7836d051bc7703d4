#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `stowage-plugin-azure` executable: serves the Blob ObjectStore and the Managed Disks BlockStore plugins to a
 * Stowage host (or Velero) over the plugin protocol.
 *
 * @packageDocumentation
 */
import { serve } from "@stowage/sdk/plugin";
import { azurePlugins } from "./plugins.js";

await serve({ plugins: azurePlugins });
