// Kubernetes naming and value rules, as pure predicates that return a reason (or undefined when valid).
// Each reason is phrased as the fix: what a valid value looks like.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
// A Kubernetes resource.Quantity: sign, number, optional suffix (binary SI, decimal SI or exponent).
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

export function dns1123Label(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  if (value.length > 63) return `must be at most 63 characters (got ${value.length})`;
  if (!DNS1123_LABEL.test(value)) {
    return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
  }
  return undefined;
}

export function dns1035Label(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  if (value.length > 63) return `must be at most 63 characters (got ${value.length})`;
  if (!DNS1035_LABEL.test(value)) {
    return "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit";
  }
  return undefined;
}

export function dns1123Subdomain(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  if (value.length > 253) return `must be at most 253 characters (got ${value.length})`;
  if (!value.split(".").every((part) => DNS1123_LABEL.test(part))) {
    return "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** A label or annotation key: optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters. */
export function qualifiedName(value: string): string | undefined {
  const parts = value.split("/");
  if (parts.length > 2)
    return "must be a qualified name: an optional DNS subdomain prefix and '/', then a name";
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const prefixReason = dns1123Subdomain(parts[0]!);
    if (prefixReason) return `prefix ${prefixReason}`;
  }
  if (name.length === 0) return "name part must not be empty";
  if (name.length > 63) return `name part must be at most 63 characters (got ${name.length})`;
  if (!LABEL_NAME.test(name)) {
    return "name part must consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  return undefined;
}

export function labelValue(value: string): string | undefined {
  if (value.length === 0) return undefined;
  if (value.length > 63) return `must be at most 63 characters (got ${value.length})`;
  if (!LABEL_NAME.test(value)) {
    return "must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  return undefined;
}

export function envVarName(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  if (value.length > 256) return `must be at most 256 characters (got ${value.length})`;
  if (!ENV_NAME.test(value)) {
    return "must consist of letters, digits, '_', '-' or '.', and must not start with a digit";
  }
  return undefined;
}

/** Longer quantities are no real amount of CPU or memory (Kubernetes itself keeps at most 18 digits of precision). */
const MAX_QUANTITY_LENGTH = 64;

export function quantity(value: string): string | undefined {
  if (value.length > MAX_QUANTITY_LENGTH) {
    return `must be at most ${MAX_QUANTITY_LENGTH} characters (got ${value.length}), a quantity such as 500m or 1Gi`;
  }
  if (!QUANTITY.test(value)) {
    return "must be a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi";
  }
  return undefined;
}

/**
 * Characters JSON.stringify leaves as they are but a terminal or a log line must not get raw: DEL, C1
 * controls (U+0085 is a line break to some readers), line and paragraph separators, zero-width and
 * bidirectional formatting characters (they reorder what is displayed), the byte order mark.
 */
const INVISIBLE = /[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** Describes a string for an error message: quoted, control characters escaped, long values shortened. */
export function describeValue(value: unknown, max = 80): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  const escaped = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text).replace(
    INVISIBLE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return text.length > max ? `${escaped} (${text.length} characters)` : escaped;
}
