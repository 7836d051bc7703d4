#!/usr/bin/env node
/**
 * The plugin executable: serves the ObjectStore `example.com/memory` over the Stowage plugin
 * protocol. A host starts it; run by hand it explains that and exits.
 *
 * @packageDocumentation
 */
import { defineObjectStore, serve } from "@stowage/sdk/plugin";
import { CONFIG_KEYS, MemoryStore } from "./store.js";

await serve({
  plugins: [
    defineObjectStore({
      name: "example.com/memory",
      description: "Keeps backup objects in the plugin process's memory (an example; objects vanish with the process).",
      capabilities: ["RANGED_READS", "OBJECT_METADATA"],
      configKeys: CONFIG_KEYS,
      create: ({ logger }) => new MemoryStore(logger),
    }),
  ],
});
