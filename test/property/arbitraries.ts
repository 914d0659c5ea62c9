// Generators of hostile input for the property tests: strings that are almost valid, unicode, control
// characters, empty, and far beyond every limit. Each is biased towards the edges a parser gets wrong.

import fc from "fast-check";

/** Characters that break naive parsers, logs and one-line messages. */
const NASTY_CHARS = [
  "\0",
  "\n",
  "\r",
  "\t",
  "\x1b",
  "\x7f",
  "\u0085",
  "\u2028",
  "\u202e",
  "\ufeff",
  "\ud83d\ude00",
  " ",
  "=",
  ",",
  ":",
  "/",
  ".",
  "-",
  "_",
  "@",
  "%",
  '"',
  "'",
  "\\",
  "*",
  "$",
  "{",
  "}",
  "é",
  "ı",
  "K", // Kelvin sign: lowercases to an ASCII k
];

const nastyChar = fc.constantFrom(...NASTY_CHARS);
const lowerAlnum = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789".split(""));

/** Strings near the shape of Kubernetes names: lowercase, digits, '-', '.', with an occasional nasty character. */
export const nameLike = fc
  .array(fc.oneof({ weight: 8, arbitrary: lowerAlnum }, { weight: 2, arbitrary: nastyChar }), {
    minLength: 0,
    maxLength: 70,
  })
  .map((chars) => chars.join(""));

/** A string of n repetitions of a unit: far beyond limits without costing the generator anything. */
export const huge = fc
  .tuple(
    fc.constantFrom("a", "A", "0", "-", "é", "\n", "\ud83d\ude00", "x/"),
    fc.constantFrom(64, 254, 1025, 8193, 70_000),
  )
  .map(([unit, n]) => unit.repeat(n));

/** Everything hostile: arbitrary unicode, control characters, almost-valid names, empty and huge. */
export const badString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: nameLike },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 2, arbitrary: fc.array(nastyChar, { maxLength: 6 }).map((c) => c.join("")) },
  { weight: 1, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: huge },
);

/** Map keys and values as a client could send them: a few entries, or very many. */
export function mapOf(
  key: fc.Arbitrary<string>,
  value: fc.Arbitrary<string>,
): fc.Arbitrary<Record<string, string>> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.dictionary(key, value, { maxKeys: 4 }) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 100, max: 300 })
        .map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]))),
    },
  );
}

/** Kubernetes resource quantities, valid and not. */
export const quantityLike: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "500m",
    "1",
    "2Gi",
    "0.5",
    "1e3",
    "1E",
    "-1",
    "+1",
    ".5",
    "1.",
    "Gi",
    "1gi",
    "1 Gi",
    "1Gi ",
  ),
  fc
    .tuple(fc.integer({ min: -5, max: 1_000_000 }), fc.constantFrom("", "m", "Ki", "Mi", "Gi", "k", "M", "x"))
    .map(([n, s]) => `${n}${s}`),
  badString,
);

/** An ordered list of names, including duplicates, blanks and far too many. */
export const nameList: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.oneof(nameLike, badString), { maxLength: 5 }) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 30, max: 200 })
      .map((n) => Array.from({ length: n }, (_, i) => `secret-${i}`)),
  },
  { weight: 1, arbitrary: fc.constant<string[]>(["a", " a ", "", "a", "  "]) },
);

/** Arbitrary JSON for Struct fields (resources, driver_config). */
export const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ requests: fc.dictionary(badString, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }) }),
  fc.record({ limits: fc.record({ cpu: fc.oneof(quantityLike, fc.jsonValue({ maxDepth: 1 })) }) }),
);

/** True when a message is one line without raw control characters (what a terminal and a log can show). */
export function isOneLine(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/.test(text);
}
