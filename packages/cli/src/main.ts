#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `stowage` executable: runs the command line, prints failures as `stowage: <message>` on
 * stderr and exits with 0 (success), 1 (failure), 2 (usage or configuration error) or 128 plus
 * the signal's number when interrupted (130 for Ctrl-C, 143 for SIGTERM).
 *
 * @packageDocumentation
 */
import { CommanderError } from "commander";
import { reportError } from "./exit.js";
import { isEmbeddedPluginLaunch } from "./host-options.js";
import { createProgram, exitCodeOfCommanderError } from "./program.js";

if (isEmbeddedPluginLaunch()) {
  // The single-executable stowage, started again by its own host as the embedded local plugin.
  await import("@stowage/plugin-local/main");
} else {
  try {
    await createProgram().parseAsync(process.argv);
  } catch (error) {
    process.exitCode = error instanceof CommanderError ? exitCodeOfCommanderError(error) : reportError(error);
  }
}
