// Registers every setting as a command-line flag on a commander command and collects the raw values
// in command-line order, so that load.ts applies one parsing and validation path to flags and env alike.

import { Option, type Command } from "commander";
import { CONFIG_FILE_ENV, CONFIG_FILE_FLAG, type ConfigInputs } from "./load.js";
import { SETTING_KEYS, SETTINGS, type Setting, type SettingKey } from "./settings.js";

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function optionFor(key: SettingKey): Option {
  const setting = SETTINGS[key] as Setting<unknown>;
  const isBoolean = setting.codec.type === "boolean";
  const flags = isBoolean
    ? `--${setting.flag} [${setting.placeholder}]`
    : `--${setting.flag} <${setting.placeholder}>`;
  const option = new Option(flags, `${setting.description} [env ${setting.env}]`).argParser(collect);
  if (isBoolean) option.preset("true");
  return option.helpGroup("Configuration (flag > env > file > default):");
}

/** Adds `--config` and one flag per setting to the command. */
export function addConfigFlags(command: Command): Command {
  command.addOption(
    new Option(`--${CONFIG_FILE_FLAG} <FILE>`, `TOML configuration file [env ${CONFIG_FILE_ENV}]`),
  );
  for (const key of SETTING_KEYS) command.addOption(optionFor(key));
  return command;
}

/** Reads the raw flag values collected by addConfigFlags from the command's parsed options. */
export function configInputsFrom(
  command: Command,
  env: Readonly<Record<string, string | undefined>>,
): ConfigInputs {
  const opts = command.opts<Record<string, unknown>>();
  const flags: Partial<Record<SettingKey, readonly string[]>> = {};
  for (const key of SETTING_KEYS) {
    const attribute = new Option(`--${SETTINGS[key].flag}`).attributeName();
    const values = opts[attribute];
    if (Array.isArray(values)) flags[key] = values as string[];
  }
  const configFlag = opts[CONFIG_FILE_FLAG];
  return { flags, configFlag: typeof configFlag === "string" ? configFlag : undefined, env };
}
