#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `stowage-plugin-bridge` executable: put it in Velero's plugin directory (or a Stowage host's)
 * with `STOWAGE_BRIDGE_ADDRESS` and a client certificate in its environment, and it offers the
 * plugins of a remote Stowage plugin service.
 *
 * @packageDocumentation
 */
import { runBridge } from "./bridge.js";

await runBridge();
