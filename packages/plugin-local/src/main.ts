#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `stowage-plugin-local` executable: serves the local ObjectStore and BlockStore plugins to a
 * Stowage host (or Velero) over the plugin protocol.
 *
 * @packageDocumentation
 */
import { serve } from "@stowage/sdk/plugin";
import { localBlockStorePlugin, localObjectStorePlugin } from "./plugins.js";

await serve({ plugins: [localObjectStorePlugin, localBlockStorePlugin] });
