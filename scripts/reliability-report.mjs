#!/usr/bin/env node
// Renders reports/reliability.jsonl (written by the reliability test project) as the Markdown
// table of docs/reliability.md: one row per trial, the last outcome recorded for it.
import { readFileSync } from "node:fs";

const path = process.argv[2] ?? "reports/reliability.jsonl";
const latest = new Map();
for (const line of readFileSync(path, "utf8").split("\n")) {
  if (line.trim() === "") continue;
  const entry = JSON.parse(line);
  latest.set(entry.trial, entry);
}
const cell = (text) => String(text).replaceAll("|", "\\|").replaceAll("\n", " ");
console.log("| trial | runs | result |");
console.log("| --- | --- | --- |");
for (const entry of [...latest.values()].sort((a, b) => a.trial.localeCompare(b.trial))) {
  console.log(`| ${cell(entry.trial)} | ${cell(entry.runs)} | ${cell(entry.result)} |`);
}
