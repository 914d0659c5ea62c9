// Image pull failures, classified: from a container's waiting reason or a kubelet event and the
// runtime's message text to a stable reason code and a one-line fix. Pure.

export type PullFailureReason =
  | "ImagePullAuthFailed"
  | "ImageNotFound"
  | "InvalidImageName"
  | "RegistryUnreachable"
  | "RegistryTLSError"
  | "RateLimited"
  | "PullSecretMissing"
  | "ImageNeverPull"
  | "ImagePullFailed";

/** Kubelet waiting reasons and event reasons that are about pulling an image. */
export const PULL_REASONS: ReadonlySet<string> = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "ImageInspectError",
  "RegistryUnavailable",
  "FailedToRetrieveImagePullSecret",
  "Failed",
  "BackOff",
  "InspectFailed",
]);

export interface Classified {
  readonly reason: PullFailureReason;
  readonly fix: string;
}

const RULES: readonly { test: RegExp; reason: PullFailureReason }[] = [
  { test: /\b(429|too ?many ?requests|toomanyrequests|rate ?limit)/i, reason: "RateLimited" },
  {
    test: /x509:|tls: |certificate (signed by unknown authority|is not valid|has expired)|failed to verify certificate|server gave HTTP response to HTTPS client/i,
    reason: "RegistryTLSError",
  },
  {
    test: /\b401\b|\b403\b|unauthorized|forbidden|authorization failed|failed to authorize|authentication required|access denied|pull access denied|insufficient_scope|denied: requested access/i,
    reason: "ImagePullAuthFailed",
  },
  {
    test: /\b404\b|not found|manifest unknown|name unknown|does not exist|no such image/i,
    reason: "ImageNotFound",
  },
  {
    test: /connection refused|no such host|i\/o timeout|network is unreachable|connection reset|dial tcp|context deadline exceeded|TLS handshake timeout|server misbehaving|\bEOF\b/i,
    reason: "RegistryUnreachable",
  },
];

const FIXES: Record<PullFailureReason, string> = {
  ImagePullAuthFailed:
    "the registry rejected the credentials: update them with 'openshell registry secret update NAME --server HOST --username USER --password-stdin' and check the account can pull this repository",
  ImageNotFound:
    "the registry has no such image or tag: check the repository name and tag (and the registry mirror rules)",
  InvalidImageName:
    "the image reference is malformed: use [registry[:port]/]repository[:tag][@sha256:digest]",
  RegistryUnreachable:
    "the node cannot reach the registry: check the host and port, DNS and network policy from the node, or configure a registry mirror",
  RegistryTLSError:
    "the registry's TLS certificate is not trusted by the node: add its CA to the container runtime's trust (e.g. containerd certs.d) or fix the certificate",
  RateLimited:
    "the registry is rate-limiting pulls: authenticate with a pull secret, use a mirror, or retry later",
  PullSecretMissing:
    "a referenced pull secret does not exist in the sandbox namespace: create it with 'openshell registry secret create' or 'kubectl create secret docker-registry'",
  ImageNeverPull:
    "imagePullPolicy is Never and the image is not on the node: pre-load the image or use IfNotPresent",
  ImagePullFailed: "the image could not be pulled: see the kubelet's message",
};

export function fixFor(reason: PullFailureReason): string {
  return FIXES[reason];
}

/**
 * Classifies a kubelet reason and message. Returns undefined when they are not about an image pull
 * (for example `BackOff` restarting a crashed container).
 */
export function classifyPullFailure(kubeletReason: string, message: string): Classified | undefined {
  let reason: PullFailureReason | undefined;
  if (kubeletReason === "InvalidImageName") reason = "InvalidImageName";
  else if (kubeletReason === "ErrImageNeverPull") reason = "ImageNeverPull";
  else if (kubeletReason === "FailedToRetrieveImagePullSecret") reason = "PullSecretMissing";
  else if (kubeletReason === "RegistryUnavailable") reason = "RegistryUnreachable";
  else {
    const aboutPull =
      /pull|image/i.test(message) ||
      ["ErrImagePull", "ImagePullBackOff", "ImageInspectError", "InspectFailed"].includes(kubeletReason);
    if (!PULL_REASONS.has(kubeletReason) || !aboutPull) return undefined;
    if (kubeletReason === "BackOff" && !/pulling image|image pull/i.test(message)) return undefined;
    reason = RULES.find((rule) => rule.test.test(message))?.reason ?? "ImagePullFailed";
  }
  return { reason, fix: FIXES[reason] };
}
