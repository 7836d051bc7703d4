/**
 * Progress bars on stderr (cli-progress): byte transfers with MiB/s, and snapshot percentages.
 * They appear only when stderr is a terminal and `--json` is off; otherwise the same calls do
 * nothing, so callers need no branches.
 *
 * @packageDocumentation
 */
import { Presets, SingleBar } from "cli-progress";
import { MIB } from "./output.js";

/** Whether progress bars may be drawn: stderr is a terminal and the output is not JSON. */
export function progressEnabled(json: boolean): boolean {
  return !json && process.stderr.isTTY;
}

/** Progress of a byte transfer. */
export interface TransferProgress {
  /** Counts `bytes` more. */
  advance(bytes: number): void;
  /** Removes the bar. */
  stop(): void;
}

const noTransfer: TransferProgress = {
  advance: () => undefined,
  stop: () => undefined,
};

/**
 * A bar for a transfer of `total` bytes: `label [████░░] 42% 107.5/256.0 MiB 612.3 MiB/s ETA 3s`.
 * A no-op unless `enabled` and the total is known.
 */
export function transferProgress(label: string, total: number | undefined, enabled: boolean): TransferProgress {
  if (!enabled || total === undefined || total <= 0) return noTransfer;
  const bar = new SingleBar(
    {
      format: `${label} {bar} {percentage}% {done}/{all} MiB  {speed} MiB/s  ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      barsize: 30,
      fps: 10,
    },
    Presets.shades_classic,
  );
  const started = performance.now();
  const all = (total / MIB).toFixed(1);
  let value = 0;
  const payload = (): Record<string, string> => {
    const elapsed = (performance.now() - started) / 1000;
    return { done: (value / MIB).toFixed(1), all, speed: elapsed > 0 ? (value / MIB / elapsed).toFixed(1) : "0.0" };
  };
  bar.start(total, 0, payload());
  return {
    advance(bytes: number): void {
      value += bytes;
      bar.update(Math.min(value, total), payload());
    },
    stop(): void {
      bar.stop();
    },
  };
}

/** Progress of something measured in percent, such as a snapshot. */
export interface PercentProgress {
  /** Shows `percent` (0–100) and a short status word. */
  update(percent: number, status: string): void;
  /** Removes the bar. */
  stop(): void;
}

/** A bar for a percentage: `label [████░░] 42% pending 1.2s`. A no-op unless `enabled`. */
export function percentProgress(label: string, enabled: boolean): PercentProgress {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar(
    { format: `${label} {bar} {percentage}% {status} {duration_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: true, barsize: 30, fps: 10 },
    Presets.shades_classic,
  );
  bar.start(100, 0, { status: "" });
  return {
    update(percent: number, status: string): void {
      bar.update(Math.max(0, Math.min(100, Math.round(percent))), { status });
    },
    stop(): void {
      bar.stop();
    },
  };
}

/**
 * Passes a byte stream through, reporting each chunk to `onChunk` (for hashing, counting and
 * progress). Use it as a `pipeline` stage or wrap any async iterable.
 */
export function tap(onChunk: (chunk: Uint8Array) => void): (source: AsyncIterable<Uint8Array>) => AsyncGenerator<Uint8Array> {
  return async function* (source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      onChunk(chunk);
      yield chunk;
    }
  };
}
