// Value codecs: how one setting is read from a flag or env string and from a typed TOML value,
// normalised and checked. A codec throws ValueError with a reason phrased as the fix.

import { isIP } from "node:net";
import { describeValue } from "../validation/kubernetes-names.js";

export class ValueError extends Error {
  /** The offending part of the value when it is narrower than the whole (one list entry, one map key). */
  readonly part: string | undefined;
  constructor(reason: string, part?: string) {
    super(reason);
    this.part = part;
  }
}

export interface Codec<T> {
  /** A word for the documentation: string, integer, boolean, list, map. */
  readonly type: string;
  fromText(raw: string): T;
  fromToml(raw: unknown): T;
  /** Joins several occurrences of a repeatable flag; absent for single-valued settings. */
  readonly repeatable?: boolean;
  /** Renders the value back to the text form (for docs and env rendering). */
  toText(value: T): string;
}

type Check<T> = (value: T) => string | undefined;

function tomlTypeError(expected: string, raw: unknown): ValueError {
  const got = Array.isArray(raw) ? "array" : typeof raw === "object" && raw !== null ? "table" : typeof raw;
  return new ValueError(`must be ${expected} in the file (got ${got})`);
}

export function stringCodec(check?: Check<string>): Codec<string> {
  const validate = (value: string): string => {
    const reason = check?.(value);
    if (reason) throw new ValueError(reason);
    return value;
  };
  return {
    type: "string",
    fromText: (raw) => validate(raw.trim()),
    fromToml: (raw) => {
      if (typeof raw !== "string") throw tomlTypeError("a string", raw);
      return validate(raw.trim());
    },
    toText: (value) => value,
  };
}

export function enumCodec<const V extends string>(values: readonly V[], allowEmpty: boolean): Codec<V | ""> {
  const choices = `${values.slice(0, -1).join(", ")}${values.length > 1 ? " or " : ""}${values.at(-1)}`;
  return stringCodec((value) =>
    value === "" && allowEmpty
      ? undefined
      : (values as readonly string[]).includes(value)
        ? undefined
        : `must be one of ${choices}${allowEmpty ? " (or empty)" : ""}`,
  ) as Codec<V | "">;
}

export function integerCodec(min: number, max: number): Codec<number> {
  const validate = (value: number): number => {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new ValueError(`must be a whole number from ${min} to ${max}`);
    }
    return value;
  };
  return {
    type: "integer",
    fromText: (raw) => {
      const text = raw.trim();
      if (!/^-?\d+$/.test(text)) throw new ValueError(`must be a whole number from ${min} to ${max}`);
      return validate(Number(text));
    },
    fromToml: (raw) => {
      if (typeof raw === "bigint") return validate(Number(raw));
      if (typeof raw !== "number") throw tomlTypeError("an integer", raw);
      return validate(raw);
    },
    toText: (value) => String(value),
  };
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

export function booleanCodec(): Codec<boolean> {
  return {
    type: "boolean",
    fromText: (raw) => {
      const text = raw.trim().toLowerCase();
      if (TRUE_WORDS.has(text)) return true;
      if (FALSE_WORDS.has(text)) return false;
      throw new ValueError("must be true or false");
    },
    fromToml: (raw) => {
      if (typeof raw !== "boolean") throw tomlTypeError("true or false", raw);
      return raw;
    },
    toText: (value) => String(value),
  };
}

/**
 * Normalises a list the way every list setting is normalised: trim each entry, drop empty entries,
 * drop later duplicates (the first occurrence keeps its place), then check each entry and the count.
 */
export function normaliseList(
  entries: readonly string[],
  check: Check<string>,
  maxEntries: number,
): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const entry of entries) {
    const name = entry.trim();
    if (name === "" || seen.has(name)) continue;
    const reason = check(name);
    if (reason) throw new ValueError(`entry ${describeValue(name)} ${reason}`, name);
    seen.add(name);
    out.push(name);
  }
  if (out.length > maxEntries) {
    throw new ValueError(`must list at most ${maxEntries} entries (got ${out.length})`);
  }
  return out;
}

/** A list given as comma-separated text (repeatable on the command line) or as a TOML array of strings. */
export function listCodec(check: Check<string>, maxEntries: number): Codec<string[]> {
  return {
    type: "list",
    repeatable: true,
    fromText: (raw) => normaliseList(raw.split(","), check, maxEntries),
    fromToml: (raw) => {
      if (!Array.isArray(raw)) throw tomlTypeError("an array of strings", raw);
      const bad: unknown = (raw as unknown[]).find((entry) => typeof entry !== "string");
      if (bad !== undefined)
        throw new ValueError(`must be an array of strings (found ${describeValue(bad)})`);
      return normaliseList(raw as string[], check, maxEntries);
    },
    toText: (value) => value.join(","),
  };
}

/** A string-to-string map given as `k=v,k2=v2` text (repeatable) or as a TOML table. */
export function mapCodec(
  checkKey: Check<string>,
  checkValue: Check<string>,
  maxEntries: number,
): Codec<Record<string, string>> {
  const build = (pairs: [string, string][]): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [rawKey, rawValue] of pairs) {
      const key = rawKey.trim();
      const value = rawValue.trim();
      const keyReason = checkKey(key);
      if (keyReason) throw new ValueError(`key ${describeValue(key)} ${keyReason}`, key);
      const valueReason = checkValue(value);
      if (valueReason) throw new ValueError(`value for ${describeValue(key)} ${valueReason}`, value);
      out[key] = value;
    }
    if (Object.keys(out).length > maxEntries) {
      throw new ValueError(`must have at most ${maxEntries} entries (got ${Object.keys(out).length})`);
    }
    return out;
  };
  return {
    type: "map",
    repeatable: true,
    fromText: (raw) =>
      build(
        raw
          .split(",")
          .filter((entry) => entry.trim() !== "")
          .map((entry) => {
            const eq = entry.indexOf("=");
            if (eq < 0) throw new ValueError(`entry ${describeValue(entry.trim())} must be KEY=VALUE`, entry);
            return [entry.slice(0, eq), entry.slice(eq + 1)];
          }),
      ),
    fromToml: (raw) => {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw tomlTypeError("a table", raw);
      const pairs = Object.entries(raw as Record<string, unknown>).map(([k, v]): [string, string] => {
        if (typeof v !== "string") throw new ValueError(`value for ${describeValue(k)} must be a string`, k);
        return [k, v];
      });
      return build(pairs);
    },
    toText: (value) =>
      Object.entries(value)
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
  };
}

export function ipAddress(value: string): string | undefined {
  return value === "" || isIP(value) !== 0 ? undefined : "must be an IPv4 or IPv6 address";
}

export function absoluteUrl(schemes: readonly string[]): Check<string> {
  return (value) => {
    if (value === "") return undefined;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return `must be an absolute URL such as ${schemes[0]}://host:port`;
    }
    return schemes.includes(url.protocol.replace(/:$/, ""))
      ? undefined
      : `must use ${schemes.map((s) => `${s}://`).join(" or ")}`;
  };
}
