/**
 * The demo's bookkeeping: steps that pass or fail (with timing and detail), figures, and the
 * final report as text or JSON.
 *
 * @packageDocumentation
 */
import { describeError } from "../exit.js";
import { formatDuration, printLines } from "../output.js";

/** One finished step. */
export interface StepResult {
  /** What the step did. */
  readonly name: string;
  /** Whether its checks passed. */
  readonly ok: boolean;
  /** What it found (on success) or why it failed. */
  readonly detail: string;
  /** How long it took, in ms. */
  readonly ms: number;
}

/** The demo's measurements. */
export interface Figures {
  /** Upload throughput through the plugin, MiB/s. */
  putMiBps?: number;
  /** Download throughput through the plugin, MiB/s. */
  getMiBps?: number;
  /** Download throughput through a signed URL, MiB/s. */
  signedGetMiBps?: number;
  /** From CreateSnapshot until the snapshot was ready, seconds. */
  snapshotSeconds?: number;
  /** The whole demo, seconds. */
  totalSeconds?: number;
}

/** Raised by {@link DemoRun.step} after a failed step, to skip the remaining main steps. */
export class StepFailed extends Error {
  constructor(readonly step: StepResult) {
    super(`${step.name}: ${step.detail}`);
    this.name = "StepFailed";
  }
}

/** What a step returns: its one-line detail and a value for later steps. */
export interface StepOutput<T> {
  readonly detail: string;
  readonly value: T;
}

/** A step's output without a value. */
export function done(detail: string): StepOutput<undefined>;
/** A step's output with a value for later steps. */
export function done<T>(detail: string, value: T): StepOutput<T>;
export function done<T>(detail: string, value?: T): StepOutput<T | undefined> {
  return { detail, value };
}

/** Runs steps, records their outcome and (in text mode) prints each one as it finishes. */
export class DemoRun {
  /** Finished steps, in order. */
  readonly steps: StepResult[] = [];
  /** Measurements. */
  readonly figures: Figures = {};
  /** The first failed step. */
  failed: StepResult | undefined;
  readonly #live: boolean;

  /** @param live - Print each step as it finishes (text mode). */
  constructor(live: boolean) {
    this.#live = live;
  }

  /** Whether every step so far passed. */
  get ok(): boolean {
    return this.steps.every((s) => s.ok);
  }

  #record(result: StepResult): void {
    this.steps.push(result);
    if (!result.ok) this.failed ??= result;
    if (this.#live) printLines(formatStep(result));
  }

  /**
   * Runs a main step: `fn` does the work, checks the result (throwing on a mismatch) and returns
   * a one-line detail plus a value for later steps (see {@link done}). A failure is recorded and
   * rethrown as {@link StepFailed}.
   */
  async step<T>(name: string, fn: () => Promise<StepOutput<T>>): Promise<T> {
    const started = performance.now();
    let output: StepOutput<T>;
    try {
      output = await fn();
    } catch (error) {
      const result = { name, ok: false, detail: describeError(error), ms: performance.now() - started };
      this.#record(result);
      throw new StepFailed(result);
    }
    this.#record({ name, ok: true, detail: output.detail, ms: performance.now() - started });
    return output.value;
  }

  /** Runs a clean-up step: like {@link DemoRun.step}, but a failure is only recorded. */
  async cleanup(name: string, fn: () => Promise<StepOutput<unknown>>): Promise<void> {
    try {
      await this.step(name, fn);
    } catch (error) {
      if (!(error instanceof StepFailed)) throw error;
    }
  }
}

const NAME_WIDTH = 30;

/** `  ✓ put 256 MiB object            detail (123 ms)`. */
export function formatStep(step: StepResult): string {
  const mark = step.ok ? "✓" : "✗";
  const detail = step.ok ? step.detail : `FAILED: ${step.detail}`;
  return `  ${mark} ${step.name.padEnd(NAME_WIDTH)} ${detail} (${formatDuration(step.ms)})`.replaceAll("\n", " ");
}

/** The figures as `label  value` lines. */
export function formatFigures(figures: Figures): string[] {
  const rows: [string, string | undefined][] = [
    ["PUT", figures.putMiBps === undefined ? undefined : `${figures.putMiBps.toFixed(1)} MiB/s`],
    ["GET", figures.getMiBps === undefined ? undefined : `${figures.getMiBps.toFixed(1)} MiB/s`],
    ["signed-URL GET", figures.signedGetMiBps === undefined ? undefined : `${figures.signedGetMiBps.toFixed(1)} MiB/s`],
    ["snapshot", figures.snapshotSeconds === undefined ? undefined : `${figures.snapshotSeconds.toFixed(2)} s`],
    ["total", figures.totalSeconds === undefined ? undefined : `${figures.totalSeconds.toFixed(2)} s`],
  ];
  return rows.filter((r): r is [string, string] => r[1] !== undefined).map(([k, v]) => `  ${k.padEnd(16)} ${v}`);
}
