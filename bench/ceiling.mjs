#!/usr/bin/env -S node --max-semi-space-size=1
// The ceiling of moving bytes between two Node processes on this machine (docs/benchmarks.md):
//
//   node --max-semi-space-size=1 bench/ceiling.mjs [--size-mib 2048] [--json out.json]
//
// Minimal two-process ceilings, no SDK and no plugin on purpose: GET = a child reads a file and
// writes it to a unix socket, the parent reads the socket; PUT = the parent writes to the socket,
// the child writes it to a file (+ fsync). Only the options and the output come from
// bench/harness.mjs.
import net from "node:net";
import { fork } from "node:child_process";
import fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { MiB, benchArgs, num, printTable, writeJson } from "./harness.mjs";

const file = fileURLToPath(new URL("../.bench-ceiling", import.meta.url));

if (process.argv[2] === "child") {
  const [, , , mode, path] = process.argv;
  const server = net.createServer({ highWaterMark: MiB }, async (socket) => {
    if (mode === "get") await pipeline(fs.createReadStream(file, { highWaterMark: 256 * 1024 }), socket);
    else {
      await pipeline(socket, fs.createWriteStream(`${file}.put`));
      const fd = fs.openSync(`${file}.put`, "r+");
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    process.send("done");
    server.close();
  });
  server.listen(path, () => process.send("ready"));
} else {
  const values = benchArgs({ "size-mib": { type: "string", default: "2048" } });
  const sizeMiB = Number(values["size-mib"]);
  const socketPath = `/tmp/ceiling-${process.pid}.sock`;
  const blocks = Array.from({ length: 16 }, (_, i) => Buffer.alloc(MiB, i));
  const ws = fs.createWriteStream(file);
  for (let i = 0; i < sizeMiB; i++) if (!ws.write(blocks[i % 16])) await new Promise((r) => ws.once("drain", r));
  await new Promise((r) => ws.end(r));
  const results = { sizeMiB, node: process.version, date: new Date().toISOString() };
  try {
    for (const mode of ["get", "put"]) {
      const path = socketPath + mode;
      const child = fork(fileURLToPath(import.meta.url), ["child", mode, path], { execArgv: ["--max-semi-space-size=1"] });
      await new Promise((r) => child.once("message", r));
      const socket = net.connect(path);
      await new Promise((r) => socket.once("connect", r));
      const start = Date.now();
      if (mode === "get") {
        let n = 0;
        socket.on("data", (chunk) => (n += chunk.length));
        await new Promise((r) => socket.on("end", r));
        if (n !== sizeMiB * MiB) throw new Error(`GET ceiling: read ${n} bytes, expected ${sizeMiB * MiB}`);
      } else {
        for (let i = 0; i < sizeMiB; i++) if (!socket.write(blocks[i % 16])) await new Promise((r) => socket.once("drain", r));
        socket.end();
        await new Promise((r) => child.once("message", r));
      }
      results[`${mode}CeilingMiBps`] = sizeMiB / ((Date.now() - start) / 1000);
      child.kill();
    }
  } finally {
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}.put`, { force: true });
  }
  printTable(["figure", "value"], [
    ["object size", `${sizeMiB} MiB`],
    ["GET ceiling: child file → unix socket → parent (MiB/s)", num(results.getCeilingMiBps)],
    ["PUT ceiling: parent → unix socket → child file + fsync (MiB/s)", num(results.putCeilingMiBps)],
  ]);
  await writeJson(values, results);
}
