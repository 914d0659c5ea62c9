// Output for read commands: aligned tables for people, stable JSON and YAML for scripts.

import { stringify as toYaml } from "yaml";

export type OutputFormat = "table" | "json" | "yaml";
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["table", "json", "yaml"];

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string;
}

/** kubectl-style table: upper-case headers, columns separated by three spaces, no trailing blanks. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => c.value(row)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return (
    cells
      .map((line) =>
        line
          .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]!)))
          .join("   ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

export function render<T>(
  format: OutputFormat,
  rows: readonly T[],
  columns: readonly Column<T>[],
  data: unknown,
): string {
  if (format === "json") return `${JSON.stringify(data, null, 2)}\n`;
  if (format === "yaml") return toYaml(data, { version: "1.1" });
  return table(rows, columns);
}

/** Human age like kubectl: 45s, 12m, 3h, 5d. */
export function age(fromMs: number | undefined, nowMs = Date.now()): string {
  if (fromMs === undefined) return "<unknown>";
  const seconds = Math.max(0, Math.floor((nowMs - fromMs) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export interface Styler {
  readonly bold: (s: string) => string;
  readonly red: (s: string) => string;
  readonly green: (s: string) => string;
  readonly yellow: (s: string) => string;
  readonly dim: (s: string) => string;
}

const wrap = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;

/** Colours only on a terminal, and never with --no-color or NO_COLOR (https://no-color.org). */
export function styler(enabled: boolean): Styler {
  if (!enabled) {
    const id = (s: string) => s;
    return { bold: id, red: id, green: id, yellow: id, dim: id };
  }
  return {
    bold: wrap(1, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    dim: wrap(2, 22),
  };
}

export function colourEnabled(
  stream: NodeJS.WriteStream,
  noColorFlag: boolean,
  env: NodeJS.ProcessEnv,
): boolean {
  return Boolean(stream.isTTY) && !noColorFlag && (env.NO_COLOR === undefined || env.NO_COLOR === "");
}
