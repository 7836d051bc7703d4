#!/usr/bin/env node
// The ceiling of moving bytes between two Node processes on this machine (docs/benchmarks.md):
//   node --max-semi-space-size=1 bench/ceiling.mjs
// Minimal two-process ceilings, no SDK: GET = child reads a file and writes it to a unix socket,
// parent reads the socket; PUT = parent writes to the socket, child writes it to a file (+fsync).
import net from "node:net"; import { fork } from "node:child_process"; import fs from "node:fs";
import { pipeline } from "node:stream/promises";
const MiB = 1 << 20, size = 2048 * MiB, file = new URL("../.bench-ceiling", import.meta.url).pathname, sock = "/tmp/ceiling-" + process.pid + ".sock";
if (process.argv[2] === "child") {
  const mode = process.argv[3];
  const srv = net.createServer({ highWaterMark: MiB }, async (s) => {
    if (mode === "get") await pipeline(fs.createReadStream(file, { highWaterMark: 256 * 1024 }), s);
    else { await pipeline(s, fs.createWriteStream(file + ".put")); const fd = fs.openSync(file + ".put", "r+"); fs.fsyncSync(fd); fs.closeSync(fd); }
    process.send("done"); srv.close();
  });
  srv.listen(process.argv[4], () => process.send("ready"));
} else {
  const blocks = Array.from({ length: 16 }, (_, i) => Buffer.alloc(MiB, i));
  { const ws = fs.createWriteStream(file); for (let i = 0; i < size / MiB; i++) if (!ws.write(blocks[i % 16])) await new Promise(r => ws.once("drain", r)); await new Promise(r => ws.end(r)); }
  for (const mode of ["get", "put"]) {
    const p = sock + mode; const child = fork(process.argv[1], ["child", mode, p], { execArgv: ["--max-semi-space-size=1"] });
    await new Promise(r => child.once("message", r));
    const s = net.connect(p); await new Promise(r => s.once("connect", r));
    const t = Date.now();
    if (mode === "get") { let n = 0; s.on("data", c => n += c.length); await new Promise(r => s.on("end", r)); }
    else { for (let i = 0; i < size / MiB; i++) if (!s.write(blocks[i % 16])) await new Promise(r => s.once("drain", r)); s.end(); await new Promise(r => child.once("message", r)); }
    console.log(mode, "ceiling MiB/s", (2048 / ((Date.now() - t) / 1000)).toFixed(0));
    child.kill();
  }
  fs.rmSync(file, { force: true }); fs.rmSync(file + ".put", { force: true });
}
