// Parsing shared by the command-line tools (openshell and openshell-gateway render-sandbox).

import { UsageError } from "./errors.js";
import { describeValue } from "../validation/kubernetes-names.js";

/** Accumulates a repeatable option. */
export const collect = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  value,
];

/** KEY=VALUE entries of a repeatable option; the value may itself contain '='. */
export function keyValues(flag: string, entries: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries ?? []) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid --${flag} ${describeValue(entry)}: must be KEY=VALUE`);
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** `--gpu` (one) or `--gpu N`; undefined when not given. */
export function gpuCount(value: string | boolean | undefined): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return 1;
  if (!/^\d+$/.test(value))
    throw new UsageError(`invalid --gpu ${describeValue(value)}: must be a whole number`);
  return Number(value);
}
