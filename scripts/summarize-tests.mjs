// Prints the closing line of a test run from vitest's JSON report: "N passed, N failed, N skipped".
// Exits 1 when the report is missing or no test ran.
import { readFileSync } from "node:fs";

const path = process.argv[2] ?? "reports/vitest.json";
let report;
try {
  report = JSON.parse(readFileSync(path, "utf8"));
} catch (error) {
  console.error(`no test report at ${path}: ${error.message}`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
const failed = report.numFailedTests ?? 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
const brokenSuites = (report.testResults ?? []).filter((r) => r.status === "failed" && (r.assertionResults ?? []).length === 0).length;
console.log(`${passed} passed, ${failed + brokenSuites} failed, ${skipped} skipped`);
if (passed + failed + brokenSuites === 0) process.exit(1);
