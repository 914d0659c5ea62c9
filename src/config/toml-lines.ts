// Finds the line on which each key of a TOML document is defined, so errors can say file:line.
// smol-toml parses values but does not report key positions; this scanner reads headers
// (`[a.b]`, `[[a.b]]`) and `key = ` lines, which is all a configuration file uses.

const BARE_OR_QUOTED_KEY = /\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*/y;

function readDottedKey(text: string, start: number): { parts: string[]; end: number } | undefined {
  const parts: string[] = [];
  let pos = start;
  for (;;) {
    BARE_OR_QUOTED_KEY.lastIndex = pos;
    const match = BARE_OR_QUOTED_KEY.exec(text);
    if (!match) return undefined;
    const raw = match[1]!;
    parts.push(
      raw.startsWith('"') ? (JSON.parse(raw) as string) : raw.startsWith("'") ? raw.slice(1, -1) : raw,
    );
    pos = BARE_OR_QUOTED_KEY.lastIndex;
    if (text[pos] !== ".") return { parts, end: pos };
    pos += 1;
  }
}

/** Maps each dotted key path (joined with "\u0000") to its 1-based line number. */
export function tomlKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table: string[] = [];
  let multiline: string | undefined;
  text.split(/\r?\n/).forEach((line, index) => {
    const lineNo = index + 1;
    if (multiline) {
      if (line.includes(multiline)) multiline = undefined;
      return;
    }
    const trimmed = line.trimStart();
    if (trimmed.startsWith("#") || trimmed === "") return;
    if (trimmed.startsWith("[")) {
      const double = trimmed.startsWith("[[");
      const key = readDottedKey(trimmed, double ? 2 : 1);
      if (key) {
        table = key.parts;
        const id = table.join("\u0000");
        if (!lines.has(id)) lines.set(id, lineNo);
      }
      return;
    }
    const key = readDottedKey(line, 0);
    if (key && line[key.end] === "=") {
      const full = [...table, ...key.parts];
      for (let i = table.length + 1; i <= full.length; i++) {
        const id = full.slice(0, i).join("\u0000");
        if (!lines.has(id)) lines.set(id, lineNo);
      }
      const rest = line.slice(key.end + 1);
      for (const quote of ['"""', "'''"]) {
        const first = rest.indexOf(quote);
        if (first >= 0 && rest.indexOf(quote, first + 3) < 0) multiline = quote;
      }
    }
  });
  return lines;
}

/** The line of the key path, or of its closest defined ancestor (inline tables put children on one line). */
export function lineOf(lines: Map<string, number>, keyPath: readonly string[]): number | undefined {
  for (let i = keyPath.length; i > 0; i--) {
    const line = lines.get(keyPath.slice(0, i).join("\u0000"));
    if (line !== undefined) return line;
  }
  return undefined;
}
