// Image references: parsing with the distribution/reference grammar, normalisation to a fully qualified
// form, and registry mirror rewriting. Pure functions.

import { parseFamiliarName } from "@swimlane/docker-reference";

export const DOCKER_HUB = "docker.io";
const MAX_REFERENCE_LENGTH = 1024;

export interface ImageReference {
  /** Registry host, with port when given (`docker.io`, `127.0.0.1:5443`, `ghcr.io`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/busybox`). */
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

export class ImageReferenceError extends Error {}

/** Parses an image reference as the kubelet and `docker pull` read it. Throws ImageReferenceError with the fix. */
export function parseImageReference(text: string): ImageReference {
  if (text.length === 0) throw new ImageReferenceError("must not be empty");
  if (text.length > MAX_REFERENCE_LENGTH) {
    throw new ImageReferenceError(`must be at most ${MAX_REFERENCE_LENGTH} characters (got ${text.length})`);
  }
  if (text !== text.trim()) throw new ImageReferenceError("must not start or end with white space");
  let ref;
  try {
    ref = parseFamiliarName(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^invalid reference format:?\s*/, "") : "";
    throw new ImageReferenceError(
      `is not a valid image reference${detail ? ` (${detail})` : ""}: use [registry[:port]/]repository[:tag][@sha256:digest], e.g. registry.example.com/team/agent:1.0`,
    );
  }
  return {
    registry: ref.domain ?? DOCKER_HUB,
    repository: ref.repository ?? "",
    tag: ref.tag,
    digest: ref.digest,
  };
}

/** The reference a kubelet pulls: fully qualified, `latest` filled in when neither tag nor digest is given. */
export function formatImageReference(ref: ImageReference): string {
  const tag = ref.tag ?? (ref.digest ? undefined : "latest");
  return `${ref.registry}/${ref.repository}${tag ? `:${tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}

/** Checks a reference and returns the reason it is invalid, or undefined. */
export function imageReferenceProblem(text: string): string | undefined {
  try {
    parseImageReference(text);
    return undefined;
  } catch (err) {
    return err instanceof ImageReferenceError ? err.message : String(err);
  }
}

const MIRROR_PREFIX = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

/** Checks a mirror rule side: a registry host (optionally with port) and optional repository path prefix. */
export function mirrorPrefixProblem(value: string): string | undefined {
  return MIRROR_PREFIX.test(value)
    ? undefined
    : "must be a registry host with optional port and path prefix, e.g. docker.io or mirror.corp:5000/dockerhub";
}

export interface MirrorResult {
  readonly requested: string;
  /** The reference the pod pulls; equal to `requested` when no rule matched. */
  readonly effective: string;
  /** The rule's source prefix when one matched. */
  readonly rule: string | undefined;
}

/**
 * Applies registry mirror rules (source prefix → replacement prefix) to an image reference. The longest
 * matching source prefix wins; a prefix matches at a path boundary (`docker.io/library` matches
 * `docker.io/library/busybox`, not `docker.io/libraryx`). Docker Hub references are matched in their
 * normalised form, so a rule for `docker.io` also covers `busybox` and `index.docker.io/...`.
 */
export function applyRegistryMirrors(image: string, mirrors: Readonly<Record<string, string>>): MirrorResult {
  const ref = parseImageReference(image);
  const qualified = `${ref.registry}/${ref.repository}`;
  let best: string | undefined;
  for (const source of Object.keys(mirrors)) {
    const normalisedSource = normaliseMirrorSource(source);
    if (qualified === normalisedSource || qualified.startsWith(`${normalisedSource}/`)) {
      if (best === undefined || normaliseMirrorSource(best).length < normalisedSource.length) best = source;
    }
  }
  if (best === undefined) return { requested: image, effective: image, rule: undefined };
  const rest = qualified.slice(normaliseMirrorSource(best).length);
  const suffix = formatImageReference(ref).slice(qualified.length);
  return { requested: image, effective: `${mirrors[best]}${rest}${suffix}`, rule: best };
}

function normaliseMirrorSource(source: string): string {
  if (source === "index.docker.io" || source === "registry-1.docker.io") return DOCKER_HUB;
  for (const alias of ["index.docker.io/", "registry-1.docker.io/"]) {
    if (source.startsWith(alias)) return `${DOCKER_HUB}/${source.slice(alias.length)}`;
  }
  return source;
}
