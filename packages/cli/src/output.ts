/**
 * Printing results: aligned text tables for people, one JSON document for programs (`--json`),
 * and the number formats both use.
 *
 * @packageDocumentation
 */

/** Bytes in a MiB. */
export const MIB = 1024 * 1024;

/** Writes `doc` as one JSON document (pretty-printed, newline-terminated) on stdout. */
export function printJson(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc, jsonReplacer, 2)}\n`);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  return value;
}

/** Writes text lines on stdout. */
export function printLines(...lines: readonly string[]): void {
  process.stdout.write(lines.map((l) => `${l}\n`).join(""));
}

/** A table column: its heading and, optionally, right alignment (numbers). */
export interface Column {
  readonly title: string;
  readonly align?: "left" | "right";
}

/**
 * Formats rows as an aligned table with a heading line, two spaces between columns and no
 * trailing blanks.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? "";
        const width = widths[i] ?? 0;
        return c.align === "right" ? cell.padStart(width) : i === columns.length - 1 ? cell : cell.padEnd(width);
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.title.toUpperCase())), ...rows.map(line)];
}

/** Prints {@link formatTable}'s lines on stdout. */
export function printTable(columns: readonly Column[], rows: readonly (readonly string[])[]): void {
  printLines(...formatTable(columns, rows));
}

/** `1536` → `"1.5 KiB"`; bytes below 1 KiB as `"512 B"`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  const text = Number.isInteger(value) ? String(value) : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return `${text} ${units[unit] ?? ""}`;
}

/** Throughput in MiB/s, rounded to one decimal (0 when no time passed). */
export function mibPerSecond(bytes: number, ms: number): number {
  return ms <= 0 ? 0 : Math.round((bytes / MIB / (ms / 1000)) * 10) / 10;
}

/** `1234` → `"1.23 s"`, `56` → `"56 ms"`. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Seconds with millisecond precision, for JSON. */
export function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

/** An ISO 8601 time, or `""` when unknown. */
export function formatDate(date: Date | undefined): string {
  return date === undefined ? "" : date.toISOString();
}
