/**
 * Reads a plugin's stderr: hclog-shaped JSON lines are re-emitted through the host's logger,
 * tagged with the plugin; other lines are logged as text. The last lines are kept for error
 * messages ("the plugin said: …").
 */
import type { Readable } from "node:stream";
import type { Logger, LogLevel } from "../logging.js";
import { isLogLevel } from "../logging.js";

const MAX_LINE = 64 * 1024;

/** One parsed stderr line. */
export interface ParsedLogLine {
  /** Level (`debug` when the line names none the host knows). */
  readonly level: LogLevel;
  /** The message. */
  readonly message: string;
  /** Every other key of a JSON line (`@module` becomes `module`). */
  readonly fields: Record<string, unknown>;
}

/** Parses one stderr line into a level, message and fields. */
export function parseLogLine(line: string): ParsedLogLine {
  if (line.startsWith("{")) {
    try {
      const parsed = JSON.parse(line) as unknown;
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
        const record = parsed as Record<string, unknown>;
        const message = record["@message"];
        if (typeof message === "string") {
          const rawLevel = typeof record["@level"] === "string" ? record["@level"].toLowerCase() : "";
          const level: LogLevel = isLogLevel(rawLevel) ? rawLevel : "debug";
          const fields: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(record)) {
            // Go plugins logging with logrus repeat the level and time without "@"; the host's
            // logger has its own, so those keys are dropped (as go-plugin hosts written in Go do).
            if (k === "@message" || k === "@level" || k === "@timestamp" || k === "level" || k === "time" || k === "timestamp") continue;
            fields[k === "@module" ? "module" : k] = v;
          }
          return { level, message, fields };
        }
      }
    } catch {
      // Not JSON after all: fall through to text.
    }
  }
  const prefixed = /^\[(TRACE|DEBUG|INFO|WARN|ERROR)\]\s*(.*)$/.exec(line);
  if (prefixed !== null) return { level: (prefixed[1] ?? "info").toLowerCase() as LogLevel, message: prefixed[2] ?? "", fields: {} };
  if (/^(panic: |fatal error: |\S*Error: |\s+at )/.test(line)) return { level: "error", message: line, fields: {} };
  return { level: "info", message: line, fields: {} };
}

/** Lines held back at most while a plugin starts (older ones are logged when more arrive). */
const MAX_HELD_LINES = 200;

/** Forwards a plugin's stderr into a logger and keeps its tail. */
export class StderrForwarder {
  readonly #logger: Logger;
  readonly #tail: string[] = [];
  readonly #tailLines: number;
  #partial = "";
  #held: ParsedLogLine[] | undefined;
  #demoted = false;

  constructor(logger: Logger, tailLines = 20) {
    this.#logger = logger;
    this.#tailLines = tailLines;
  }

  /** Starts reading `stream`. */
  attach(stream: Readable): void {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      this.#partial += chunk;
      let newline = this.#partial.indexOf("\n");
      while (newline >= 0) {
        this.#line(this.#partial.slice(0, newline));
        this.#partial = this.#partial.slice(newline + 1);
        newline = this.#partial.indexOf("\n");
      }
      if (this.#partial.length > MAX_LINE) {
        this.#line(this.#partial);
        this.#partial = "";
      }
    });
    stream.on("end", () => {
      if (this.#partial !== "") this.#line(this.#partial);
      this.#partial = "";
    });
  }

  #line(raw: string): void {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") return;
    const parsed = parseLogLine(line);
    const { level, message, fields } = parsed;
    this.#tail.push(level === "info" && Object.keys(fields).length === 0 ? message : `${level}: ${message}`);
    if (this.#tail.length > this.#tailLines) this.#tail.shift();
    if (this.#demoted) {
      this.#logger.debug({ ...fields, pluginLevel: level }, message);
      return;
    }
    if (this.#held === undefined) {
      this.#logger[level](fields, message);
      return;
    }
    this.#held.push(parsed);
    const oldest = this.#held.length > MAX_HELD_LINES ? this.#held.shift() : undefined;
    if (oldest !== undefined) this.#logger[oldest.level](oldest.fields, oldest.message);
  }

  /**
   * Holds lines back instead of logging them, while the plugin starts: if it fails to start, the
   * error quotes its last lines, and logging them as well would print them twice.
   */
  hold(): void {
    this.#held ??= [];
  }

  /** Logs the held lines at their levels and forwards the next ones as they come (the plugin started). */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const line of held) this.#logger[line.level](line.fields, line.message);
  }

  /** Logs the held lines, and any later ones, at debug only (the plugin failed to start; its error quotes them). */
  discard(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#demoted = true;
    for (const line of held) this.#logger.debug({ ...line.fields, pluginLevel: line.level }, line.message);
  }

  /** The last lines the plugin wrote, oldest first. */
  tail(): string {
    return this.#tail.join("\n");
  }
}
