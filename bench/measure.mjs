// Shared by the benchmarks: an allocation-free deterministic body, and process measurements.
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";

const MiB = 1024 * 1024;

/**
 * 16 distinct pre-generated 1 MiB blocks. Cycling through them, a body costs no allocation per
 * chunk, so the figures measure the transfer rather than the generator.
 */
const BLOCKS = Array.from({ length: 16 }, (_, b) => {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += 4) block.writeUInt32LE((Math.imul(i + b * MiB, 2654435761) ^ 0x9e3779b9) >>> 0, i);
  return block;
});

/**
 * A deterministic body of `size` bytes in 1 MiB chunks. By default the chunks are the 16 blocks,
 * reused; with `fresh` each is a newly allocated copy of its block, as a file or network stream
 * hands out new buffers, so that a transfer which keeps chunks reachable shows in its memory.
 */
export function body(size, { fresh = false } = {}) {
  let sent = 0;
  let index = 0;
  return Readable.from(
    (function* () {
      while (sent < size) {
        const n = Math.min(MiB, size - sent);
        const block = BLOCKS[index++ % BLOCKS.length].subarray(0, n);
        sent += n;
        if (!fresh) {
          yield block;
          continue;
        }
        const chunk = Buffer.allocUnsafe(n);
        block.copy(chunk);
        yield chunk;
      }
    })(),
    { objectMode: false, highWaterMark: 4 * MiB },
  );
}

/** Peak resident memory (VmHWM) of a process, in bytes. */
export function peakRss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Current resident memory (VmRSS) of a process, in bytes. */
export function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  // After the command name: utime and stime are fields 14 and 15 (1-based, clock ticks).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs `fn` and returns its duration in seconds with its result. */
export async function time(fn) {
  const start = process.hrtime.bigint();
  const result = await fn();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, result };
}

/** Reads a stream to its end and returns the number of bytes. */
export async function drain(stream) {
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  return n;
}

/** The median of a list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
