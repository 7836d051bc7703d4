#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `stowage-plugin-aws` executable: serves the S3 ObjectStore and the EBS BlockStore plugins to a
 * Stowage host (or Velero) over the plugin protocol.
 *
 * @packageDocumentation
 */
import { serve } from "@stowage/sdk/plugin";
import { awsBlockStorePlugin, awsObjectStorePlugin } from "./plugins.js";

await serve({ plugins: [awsObjectStorePlugin, awsBlockStorePlugin] });
