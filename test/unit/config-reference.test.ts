import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { REFERENCE_BEGIN, REFERENCE_END, configReference } from "../../src/config/reference.js";
import { SETTING_KEYS, SETTINGS } from "../../src/config/settings.js";

/** Ignores the padding prettier adds to Markdown tables. */
function normalise(markdown: string): string {
  return markdown
    .split("\n")
    .map((line) =>
      line
        .replace(/\s*\|\s*/g, "|")
        .replace(/-{3,}/g, "---")
        .trim(),
    )
    .filter((line) => line !== "")
    .join("\n");
}

test("README's configuration reference matches the settings table (npm run config-reference)", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const start = readme.indexOf(REFERENCE_BEGIN);
  const end = readme.indexOf(REFERENCE_END);
  assert.ok(start >= 0 && end > start, "README has the markers");
  assert.equal(normalise(readme.slice(start, end + REFERENCE_END.length)), normalise(configReference()));
});

test("every setting has a distinct flag and env var in the OPENSHELL_ namespace", () => {
  const flags = SETTING_KEYS.map((k) => SETTINGS[k].flag);
  const envs = SETTING_KEYS.map((k) => SETTINGS[k].env);
  assert.equal(new Set(flags).size, flags.length);
  assert.equal(new Set(envs).size, envs.length);
  for (const env of envs) assert.match(env, /^OPENSHELL_[A-Z0-9_]+$/);
});
