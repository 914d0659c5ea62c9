// A node:test reporter for the end-to-end acceptance scenarios (issue #8): tests named "scenario N: …" or
// "scenarios N, M: …" (in any file, at any nesting) are collected; at the end of the run a table (scenario,
// result, seconds) is printed and written to build/test-results/acceptance.{md,json}. A scenario with no
// test in the run is "not run"; one with any failing test is "fail". `make test` checks the JSON afterwards
// (scripts/check-acceptance.mjs). Plain JavaScript: node loads reporters without the tsx hook., so a scenario cannot silently disappear.

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The thirteen scenarios of issue #8, in order. */
export const SCENARIOS = [
  "chart: gateway image from the authenticated registry with imagePullSecrets → Ready",
  "chart without imagePullSecrets → ErrImagePull/ImagePullBackOff (negative control)",
  "installed gateway, sandboxImagePullSecrets → CLI create READY, exec prints ok",
  "per-sandbox --image-pull-secret only → READY",
  "service-account secret merged with a per-sandbox secret → READY",
  "missing secret → PullSecretMissing at once, nothing created",
  "wrong password → ImagePullAuthFailed (probe; kubelet with preflight off)",
  "unknown tag → ImageNotFound",
  "secret in another namespace → both namespaces named",
  "credentials rotated with registry secret update → new sandbox pulls",
  "mirror rule rewrites to the private registry → READY, both references shown",
  "upstream Python SDK on the installed gateway: create, READY, exec, delete",
  "gateway pod deleted while provisioning → READY exactly once",
];

/**
 * @typedef {{ name: string, file: string, passed: boolean, seconds: number }} ScenarioTest
 * @typedef {{ scenario: number, title: string, result: "pass" | "fail" | "not run", seconds: number,
 *   tests: ScenarioTest[] }} ScenarioResult
 */

const OUT_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "build",
  "test-results",
);
const NAME = /^scenarios? (\d+(?:, \d+)*):/;

/** @param {ScenarioResult[]} results */
function table(results) {
  const lines = ["| # | scenario | result | seconds |", "|---:|---|---|---:|"];
  for (const r of results) {
    lines.push(`| ${r.scenario} | ${r.title} | ${r.result} | ${r.seconds.toFixed(1)} |`);
  }
  const passed = results.filter((r) => r.result === "pass").length;
  lines.push("", `${passed} of ${results.length} scenarios passed`);
  return lines.join("\n");
}

/**
 * @param {AsyncIterable<{ type: string, data: { name?: string, file?: string,
 *   details?: { duration_ms?: number } } }>} source
 */
export default async function* acceptanceReporter(source) {
  /** @type {Map<number, ScenarioTest[]>} */
  const seen = new Map();
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const match = NAME.exec(event.data.name ?? "");
    if (!match?.[1]) continue;
    for (const n of match[1].split(", ").map(Number)) {
      const tests = seen.get(n) ?? [];
      tests.push({
        name: event.data.name ?? "",
        file: path.relative(process.cwd(), event.data.file ?? ""),
        passed: event.type === "test:pass",
        seconds: Math.round(event.data.details?.duration_ms ?? 0) / 1000,
      });
      seen.set(n, tests);
    }
  }
  if (seen.size === 0) return; // a run without the acceptance suite (e.g. one file): nothing to report
  /** @type {ScenarioResult[]} */
  const results = SCENARIOS.map((title, i) => {
    const tests = seen.get(i + 1) ?? [];
    return {
      scenario: i + 1,
      title,
      result: tests.length === 0 ? "not run" : tests.every((x) => x.passed) ? "pass" : "fail",
      seconds: Math.round(tests.reduce((sum, x) => sum + x.seconds, 0) * 10) / 10,
      tests,
    };
  });
  const text = table(results);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(path.join(OUT_DIR, "acceptance.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(OUT_DIR, "acceptance.md"), `# End-to-end acceptance\n\n${text}\n`);
  yield `\nEnd-to-end acceptance (build/test-results/acceptance.md)\n\n${text}\n`;
}
