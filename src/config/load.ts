// Assembles the gateway configuration with precedence flag > OPENSHELL_* env > TOML file > default.
// Every problem becomes one ConfigError line naming the setting, the value and where it came from.

import { readFileSync } from "node:fs";
import { parse as parseToml, TomlError } from "smol-toml";
import { ValueError } from "./codecs.js";
import { lineOf, tomlKeyLines } from "./toml-lines.js";
import {
  SETTING_KEYS,
  SETTINGS,
  defaultConfig,
  type GatewayConfig,
  type Setting,
  type SettingKey,
} from "./settings.js";
import { describeValue } from "../validation/kubernetes-names.js";

export const CONFIG_FILE_FLAG = "config";
export const CONFIG_FILE_ENV = "OPENSHELL_GATEWAY_CONFIG";
export const CONFIG_FILE_VERSION = 1;

export type Source =
  | { readonly kind: "default" }
  | { readonly kind: "flag"; readonly flag: string }
  | { readonly kind: "env"; readonly name: string }
  | { readonly kind: "file"; readonly path: string; readonly line: number | undefined; readonly key: string };

export function describeSource(source: Source): string {
  switch (source.kind) {
    case "default":
      return "default";
    case "flag":
      return `flag --${source.flag}`;
    case "env":
      return `env ${source.name}`;
    case "file":
      return `file ${source.path}${source.line ? `:${source.line}` : ""} (${source.key})`;
  }
}

/** A configuration problem: one line, and the process exits 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
}

export interface LoadedConfig {
  readonly config: GatewayConfig;
  readonly sources: { readonly [K in SettingKey]: Source };
  readonly file: string | undefined;
}

export interface ConfigInputs {
  /** Raw flag values per setting, in command-line order (repeatable flags may have several). */
  readonly flags: Partial<Record<SettingKey, readonly string[]>>;
  /** The `--config` flag, if given. */
  readonly configFlag?: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the config file; injectable for tests. */
  readonly readFile?: (path: string) => string;
}

function valueError(setting: Setting<unknown>, raw: unknown, source: Source, err: unknown): ConfigError {
  if (!(err instanceof ValueError)) throw err;
  // A secret's value (or any part of it) is never echoed; a list or map error already names its entry.
  if (setting.secret) {
    return new ConfigError(
      `invalid ${setting.title} (value redacted) from ${describeSource(source)}: ${err.message}`,
    );
  }
  const shown = err.part !== undefined ? "" : ` ${describeValue(raw)}`;
  return new ConfigError(`invalid ${setting.title}${shown} from ${describeSource(source)}: ${err.message}`);
}

function parseWith<T>(setting: Setting<T>, raw: unknown, source: Source, fromText: boolean): T {
  try {
    return fromText ? setting.codec.fromText(raw as string) : setting.codec.fromToml(raw);
  } catch (err) {
    throw valueError(setting, raw, source, err);
  }
}

interface TomlDoc {
  readonly path: string;
  readonly root: Record<string, unknown>;
  readonly lines: Map<string, number>;
}

function readTomlFile(path: string, read: (path: string) => string): TomlDoc {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(code ?? err);
    throw new ConfigError(
      `cannot read config file ${path}: ${reason}; fix the --config / ${CONFIG_FILE_ENV} path`,
    );
  }
  let root: Record<string, unknown>;
  try {
    root = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const firstLine = err.message.split("\n")[0]!.replace(/^Invalid TOML document:\s*/, "");
      throw new ConfigError(`invalid config file ${path}:${err.line}:${err.column}: ${firstLine}`);
    }
    throw err;
  }
  return { path, root, lines: tomlKeyLines(text) };
}

/** The tree of keys the file may contain: a leaf is a setting key, a branch a table. */
type KeyTree = { [key: string]: KeyTree | SettingKey };

function allowedKeys(): KeyTree {
  const tree: KeyTree = { version: "__version__" as SettingKey };
  const add = (keyPath: readonly string[], key: SettingKey) => {
    let node = tree;
    keyPath.forEach((part, i) => {
      if (i === keyPath.length - 1) node[part] = key;
      else node = (node[part] ??= {}) as KeyTree;
    });
  };
  for (const key of SETTING_KEYS) {
    const setting = SETTINGS[key] as Setting<unknown>;
    if (setting.toml) add(setting.toml, key);
    if (setting.tomlInherit) add(setting.tomlInherit, key);
  }
  return tree;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

const FILE_FORBIDDEN = new Set(["database_url", "db_url"]);

function checkUnknownKeys(doc: TomlDoc): void {
  const unknown = (keyPath: string[], known: string[]): ConfigError => {
    const last = keyPath.at(-1)!;
    const line = lineOf(doc.lines, keyPath);
    const close = known
      .map((k) => [k, editDistance(k, last)] as const)
      .filter(([, d]) => d <= Math.max(2, Math.floor(last.length / 4)))
      .sort((x, y) => x[1] - y[1])[0];
    const hint = close ? `did you mean ${close[0]}?` : `known keys here: ${known.join(", ")}`;
    return new ConfigError(
      `unknown key ${keyPath.join(".")} in ${doc.path}${line ? `:${line}` : ""}: remove it or fix the spelling (${hint})`,
    );
  };
  const walk = (value: Record<string, unknown>, tree: KeyTree, keyPath: string[]) => {
    for (const [key, child] of Object.entries(value)) {
      const childPath = [...keyPath, key];
      const node = tree[key];
      if (node === undefined && FILE_FORBIDDEN.has(key)) {
        const line = lineOf(doc.lines, childPath);
        throw new ConfigError(
          `key ${childPath.join(".")} is not allowed in ${doc.path}${line ? `:${line}` : ""}: the database URL may hold a password; pass it with --db-url or OPENSHELL_DB_URL`,
        );
      }
      if (node === undefined) throw unknown(childPath, Object.keys(tree));
      if (typeof node === "object") {
        if (typeof child !== "object" || child === null || Array.isArray(child)) {
          const line = lineOf(doc.lines, childPath);
          throw new ConfigError(
            `invalid key ${childPath.join(".")} in ${doc.path}${line ? `:${line}` : ""}: must be a table ([${childPath.join(".")}])`,
          );
        }
        walk(child as Record<string, unknown>, node, childPath);
      }
    }
  };
  walk(doc.root, { openshell: allowedKeys() }, []);
  const version = (doc.root.openshell as Record<string, unknown> | undefined)?.version;
  if (version !== undefined && version !== CONFIG_FILE_VERSION) {
    const line = lineOf(doc.lines, ["openshell", "version"]);
    throw new ConfigError(
      `unsupported config file version ${describeValue(version)} in ${doc.path}${line ? `:${line}` : ""}: this gateway reads version = ${CONFIG_FILE_VERSION}`,
    );
  }
}

function tomlLookup(doc: TomlDoc, keyPath: readonly string[]): { found: boolean; value: unknown } {
  let node: unknown = doc.root.openshell;
  for (const part of keyPath) {
    if (typeof node !== "object" || node === null || !(part in node))
      return { found: false, value: undefined };
    node = (node as Record<string, unknown>)[part];
  }
  return { found: true, value: node };
}

/** Loads and validates the configuration. Throws ConfigError (exit code 2) on the first problem. */
export function loadConfig(inputs: ConfigInputs): LoadedConfig {
  const read = inputs.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const envFile = inputs.env[CONFIG_FILE_ENV];
  const filePath = inputs.configFlag ?? (envFile !== undefined && envFile !== "" ? envFile : undefined);
  const doc = filePath !== undefined ? readTomlFile(filePath, read) : undefined;
  if (doc) checkUnknownKeys(doc);

  const config = defaultConfig() as Record<SettingKey, unknown>;
  const sources = {} as Record<SettingKey, Source>;
  for (const key of SETTING_KEYS) {
    const setting = SETTINGS[key] as Setting<unknown>;
    sources[key] = { kind: "default" };

    const flagValues = inputs.flags[key];
    const envValue = inputs.env[setting.env];
    if (flagValues && flagValues.length > 0) {
      const source: Source = { kind: "flag", flag: setting.flag };
      const raw = setting.codec.repeatable ? flagValues.join(",") : flagValues.at(-1)!;
      config[key] = parseWith(setting, raw, source, true);
      sources[key] = source;
    } else if (envValue !== undefined) {
      const source: Source = { kind: "env", name: setting.env };
      config[key] = parseWith(setting, envValue, source, true);
      sources[key] = source;
    } else if (doc) {
      for (const keyPath of [setting.toml, setting.tomlInherit]) {
        if (!keyPath) continue;
        const { found, value } = tomlLookup(doc, keyPath);
        if (!found) continue;
        const full = ["openshell", ...keyPath];
        const source: Source = {
          kind: "file",
          path: doc.path,
          line: lineOf(doc.lines, full),
          key: full.join("."),
        };
        config[key] = parseWith(setting, value, source, false);
        sources[key] = source;
        break;
      }
    }
  }
  return { config: config as GatewayConfig, sources, file: doc?.path };
}
