// After `make test`: every end-to-end acceptance scenario ran and passed (the table written by
// test/support/acceptance-reporter.mjs). Exit 1 with one line per scenario that did not.
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";

import { SCENARIOS } from "../test/support/acceptance-reporter.mjs";

const file = "build/test-results/acceptance.json";
if (!existsSync(file)) {
  process.stderr.write(`check-acceptance: ${file} is missing: the run reported no acceptance scenario\n`);
  process.exit(1);
}
/** @type {import("../test/support/acceptance-reporter.mjs").ScenarioResult[]} */
const results = JSON.parse(readFileSync(file, "utf8"));
const bad = results.filter((r) => r.result !== "pass");
for (const r of bad)
  process.stderr.write(`check-acceptance: scenario ${r.scenario} (${r.title}): ${r.result}\n`);
if (bad.length > 0 || results.length !== SCENARIOS.length) process.exit(1);
process.stdout.write(`check-acceptance: all ${results.length} scenarios passed\n`);
