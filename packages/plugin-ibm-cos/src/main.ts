#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `stowage-plugin-ibm-cos` executable: serves the IBM COS ObjectStore plugin to a Stowage host
 * (or Velero) over the plugin protocol.
 *
 * @packageDocumentation
 */
import { serve } from "@stowage/sdk/plugin";
import { ibmCosObjectStorePlugin } from "./plugins.js";

await serve({ plugins: [ibmCosObjectStorePlugin] });
