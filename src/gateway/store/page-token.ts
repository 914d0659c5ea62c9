// List cursors: the (createdAtMs, id) of the last record on a page, so the next page starts strictly after it
// (keyset pagination: stable under concurrent inserts and deletes, and no OFFSET scans).

/** The page token is not one this store issued (or it was altered). */
export class InvalidPageTokenError extends Error {}

export interface PageCursor {
  readonly createdAtMs: number;
  readonly id: string;
}

export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAtMs, cursor.id]), "utf8").toString("base64url");
}

export function decodePageToken(token: string): PageCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  if (
    Array.isArray(parsed) &&
    parsed.length === 2 &&
    Number.isSafeInteger(parsed[0]) &&
    typeof parsed[1] === "string" &&
    parsed[1] !== ""
  ) {
    const cursor = { createdAtMs: parsed[0] as number, id: parsed[1] };
    // Buffer's base64url decoder skips characters it does not know; only accept the canonical spelling.
    if (encodePageToken(cursor) === token) return cursor;
  }
  throw new InvalidPageTokenError(
    "page token is not valid: pass the nextPageToken of a previous page unchanged, or none for the first page",
  );
}
