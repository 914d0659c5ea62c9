// `openshell-gateway check-config`: validates the configuration and prints the effective values as JSON,
// each with its source. Secret values are redacted.

import type { Command } from "commander";
import { configInputsFrom } from "../../config/flags.js";
import { loadConfig, type LoadedConfig } from "../../config/load.js";
import { serveProblems } from "../../config/serve-checks.js";
import { SETTING_KEYS, SETTINGS, type Setting } from "../../config/settings.js";
import { EXIT } from "../../cli/errors.js";

export function redactSecret(value: string): string {
  if (value === "" || value.startsWith("sqlite:")) return value;
  try {
    const url = new URL(value);
    if (url.password) url.password = "REDACTED";
    for (const key of [...url.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) url.searchParams.set(key, "REDACTED");
    }
    return url.toString();
  } catch {
    return "REDACTED";
  }
}

export function effectiveConfigJson(loaded: LoadedConfig, problems: readonly string[]): unknown {
  const settings: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const setting = SETTINGS[key] as Setting<unknown>;
    const value = loaded.config[key];
    settings[key] = {
      value: setting.secret && typeof value === "string" ? redactSecret(value) : value,
      source: loaded.sources[key],
      flag: `--${setting.flag}`,
      env: setting.env,
      toml: setting.toml ? `openshell.${setting.toml.join(".")}` : null,
    };
  }
  return { valid: problems.length === 0, file: loaded.file ?? null, problems, settings };
}

export function checkConfigAction(command: Command, env: NodeJS.ProcessEnv): number {
  const loaded = loadConfig(configInputsFrom(command, env));
  const problems = serveProblems(loaded);
  process.stdout.write(`${JSON.stringify(effectiveConfigJson(loaded, problems), null, 2)}\n`);
  for (const problem of problems) process.stderr.write(`openshell-gateway: error: ${problem}\n`);
  return problems.length === 0 ? EXIT.ok : EXIT.usage;
}
