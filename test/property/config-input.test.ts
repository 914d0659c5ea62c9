// Bad input over every configuration setting, as property-based tests (fast-check). The settings table
// (src/config/settings.ts) is iterated, so a new setting is covered without touching this file. Through
// the flag, the environment variable and the TOML file, whatever the value: the configuration loads, or
// it fails with one ConfigError line naming the setting and where the value came from (exit code 2);
// never another exception. Accepted values survive a round trip through their text form. Then the built
// binary: `openshell-gateway check-config` exits 2 with that one line for an invalid value of every setting.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { stringify as stringifyToml } from "smol-toml";
import { ConfigError, loadConfig, type ConfigInputs } from "../../src/config/load.js";
import { SETTING_KEYS, SETTINGS, type Setting, type SettingKey } from "../../src/config/settings.js";
import { main } from "../../src/gateway/main.js";
import { badString, huge, isOneLine } from "./arbitraries.js";
import { runProcess, type RunResult } from "../support/process.js";

/** Per setting and source; loading is pure and takes well under a millisecond. */
const NUM_RUNS = 60;
const BIN = new URL("../../bin/openshell-gateway", import.meta.url).pathname;
const FILE = "/etc/openshell/gateway.toml";

const settingOf = (key: SettingKey) => SETTINGS[key] as Setting<unknown>;

/** Text as a flag or environment variable can carry it (no NUL: argv and environ cannot hold one). */
const textValue = fc.oneof(
  { weight: 6, arbitrary: badString.map((s) => s.replaceAll("\0", "")) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("true", "no", "-1", "0", "65536", "1e3", "0x10", " 8080 ", "a=b,c"),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 20, max: 2000 })
      .map((n) => Array.from({ length: n }, (_, i) => `name-${i}`).join(",")),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 20, max: 2000 })
      .map((n) => Array.from({ length: n }, (_, i) => `host${i}.example=mirror.example/p${i}`).join(",")),
  },
);

/** Any TOML value: wrong types, unicode and control characters, huge strings and arrays, nested tables. */
const tomlValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: badString },
  { weight: 1, arbitrary: huge },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 2, arbitrary: fc.array(fc.oneof(badString, fc.integer(), fc.boolean()), { maxLength: 5 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 30, max: 1000 }).map((n) => Array.from({ length: n }, (_, i) => `s${i}`)),
  },
  { weight: 1, arbitrary: fc.dictionary(badString, fc.oneof(badString, fc.integer()), { maxKeys: 4 }) },
);

function inputs(key: SettingKey, source: "flag" | "env" | "file", value: unknown): ConfigInputs {
  const setting = settingOf(key);
  if (source === "flag") return { flags: { [key]: [value as string] }, env: {} };
  if (source === "env") return { flags: {}, env: { [setting.env]: value as string } };
  const table: Record<string, unknown> = { version: 1 };
  let node = table;
  setting.toml!.forEach((part, i) => {
    if (i === setting.toml!.length - 1) node[part] = value;
    else node = (node[part] ??= {}) as Record<string, unknown>;
  });
  const text = stringifyToml({ openshell: table });
  return { flags: {}, env: {}, configFlag: FILE, readFile: () => text };
}

/** Where the message must say the value came from. */
function sourcePattern(key: SettingKey, source: "flag" | "env" | "file"): RegExp {
  const setting = settingOf(key);
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  if (source === "flag") return new RegExp(`from flag --${escape(setting.flag)}:`);
  if (source === "env") return new RegExp(`from env ${escape(setting.env)}:`);
  return new RegExp(`from file ${escape(FILE)}:\\d+ \\(openshell\\.${escape(setting.toml!.join("."))}\\):`);
}

/** Loads; returns the accepted value, or checks the refusal and returns undefined. */
function loadOrRefuse(key: SettingKey, source: "flag" | "env" | "file", value: unknown): unknown {
  const setting = settingOf(key);
  try {
    return loadConfig(inputs(key, source, value)).config[key];
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    assert.equal(err.exitCode, 2);
    const message = err.message;
    assert.ok(isOneLine(message), `one line without control characters: ${JSON.stringify(message)}`);
    assert.ok(message.length <= 1024, `a bounded message (${message.length} characters)`);
    assert.ok(message.startsWith(`invalid ${setting.title}`), `names the setting: ${message}`);
    assert.match(message, sourcePattern(key, source));
    if (setting.secret && typeof value === "string" && value.length >= 4) {
      assert.ok(!message.includes(value), "a secret setting's value is never echoed");
    }
    return undefined;
  }
}

describe("bad input over every configuration setting (fast-check, in-process)", () => {
  for (const key of SETTING_KEYS) {
    const setting = settingOf(key);
    const sources = setting.toml ? (["flag", "env", "file"] as const) : (["flag", "env"] as const);
    test(`${key}: ${sources.map((s) => (s === "flag" ? `--${setting.flag}` : s === "env" ? setting.env : `openshell.${setting.toml!.join(".")}`)).join(", ")}`, () => {
      let refused = 0;
      for (const source of sources) {
        fc.assert(
          fc.property(source === "file" ? tomlValue : textValue, (value) => {
            const accepted = loadOrRefuse(key, source, value);
            if (accepted === undefined) {
              refused++;
              return;
            }
            // what was accepted means the same when rendered back to text (check-config, Helm, env)
            assert.deepEqual(setting.codec.fromText(setting.codec.toText(accepted)), accepted);
          }),
          { numRuns: NUM_RUNS },
        );
      }
      assert.ok(refused > 0, `some value of ${key} was refused`);
    });
  }

  test("list and map settings are bounded: 1000 distinct valid-looking entries are refused", () => {
    const bounded = SETTING_KEYS.filter((k) => ["list", "map"].includes(settingOf(k).codec.type));
    assert.ok(bounded.length >= 2, "the table has list and map settings");
    for (const key of bounded) {
      const entries = Array.from({ length: 1000 }, (_, i) =>
        settingOf(key).codec.type === "map" ? `host${i}.example=mirror.example/p${i}` : `entry-${i}.example`,
      );
      for (const source of ["flag", "env"] as const) {
        assert.equal(loadOrRefuse(key, source, entries.join(",")), undefined, `${key} from ${source}`);
      }
    }
  });
});

/** Runs the built binary; resolves with the exit code and output. */
function checkConfig(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runProcess(process.execPath, [BIN, "check-config", ...args], { env });
}

/** An invalid value of a setting for the binary: the first text candidate the loader refuses, else a file value. */
function invalidInvocation(
  key: SettingKey,
  dir: string,
): { args: string[]; env: Record<string, string>; via: string } {
  const setting = settingOf(key);
  const candidates = [
    "not a valid value!",
    "-1",
    "99999999999",
    "maybe",
    "ftp://x",
    "x".repeat(300),
    "a,b=,=c",
  ];
  const text = candidates.find((c) => loadOrRefuse(key, "flag", c) === undefined);
  // Alternate between the flag and the environment variable so both paths reach the binary.
  if (text !== undefined && SETTING_KEYS.indexOf(key) % 2 === 0)
    return { args: [`--${setting.flag}`, text], env: {}, via: `flag --${setting.flag}` };
  if (text !== undefined) return { args: [], env: { [setting.env]: text }, via: `env ${setting.env}` };
  assert.ok(setting.toml, `${key}: no invalid text value and no file key; add a candidate`);
  // A NUL, or a table where a value belongs: invalid for every codec.
  const file = join(dir, `${key}.toml`);
  const { readFile } = inputs(key, "file", { not: "a value" });
  writeFileSync(file, readFile!(FILE));
  return { args: ["--config", file], env: {}, via: `file ${file}` };
}

/** Runs `openshell-gateway check-config` in this process, through the same main() the binary runs. */
async function checkConfigInProcess(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const write = {
    out: process.stdout.write.bind(process.stdout),
    err: process.stderr.write.bind(process.stderr),
  };
  const saved = process.exitCode;
  process.exitCode = 0;
  process.stdout.write = (chunk: string | Uint8Array) => ((stdout += String(chunk)), true);
  process.stderr.write = (chunk: string | Uint8Array) => ((stderr += String(chunk)), true);
  try {
    await main(["check-config", ...args], { PATH: process.env.PATH ?? "", ...env });
    return { code: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
    process.exitCode = saved;
  }
}

function assertRefusedLine(
  key: SettingKey,
  via: string,
  result: { code: number | null; stdout: string; stderr: string },
): void {
  const setting = settingOf(key);
  assert.equal(result.code, 2, `${key} via ${via}: exit code 2, got ${result.code}: ${result.stderr}`);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${key}: one line on stderr: ${result.stderr}`);
  assert.ok(
    lines[0]!.startsWith(`openshell-gateway: error: invalid ${setting.title}`),
    `${key}: ${lines[0]}`,
  );
  assert.ok(lines[0]!.includes(` from ${via}`), `${key}: names the source ${via}: ${lines[0]}`);
  assert.equal(result.stdout, "", `${key}: nothing on stdout`);
}

describe("openshell-gateway check-config: exit code 2 for an invalid value of every setting", () => {
  const dir = mkdtempSync(join(tmpdir(), "osgw-config-prop-"));
  const runs = SETTING_KEYS.map((key) => ({ key, ...invalidInvocation(key, dir) }));

  test("every setting, through the gateway's main() (flag, env or file)", async () => {
    for (const r of runs) assertRefusedLine(r.key, r.via, await checkConfigInProcess(r.args, r.env));
    const vias = new Set(runs.map((r) => r.via.split(" ")[0]));
    assert.deepEqual([...vias].sort(), ["env", "file", "flag"], "all three sources were used");
    console.log(`check-config refused an invalid value of each of ${runs.length} settings with exit code 2`);
  });

  test("the built binary (bin/openshell-gateway): one setting per source", async () => {
    const sample = ["flag", "env", "file"].map((kind) => runs.find((r) => r.via.startsWith(kind))!);
    const results = await Promise.all(sample.map((r) => checkConfig(r.args, r.env)));
    sample.forEach((r, i) => assertRefusedLine(r.key, r.via, results[i]!));
  });
});
