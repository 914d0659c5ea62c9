// The pull path, explained before it wastes anyone's time: preflight and the optional registry probe
// before a create, and classification of the kubelet's pull failures after it.

import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config/settings.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import type { ObservedSandbox, PlatformEvent } from "../kubernetes/types.js";
import { classifyPullFailure, fixFor, type PullFailureReason } from "../registry/classify.js";
import { keyMatchesImage, parsePullSecret } from "../registry/dockerconfig.js";
import { blocking, preflight, type PreflightFinding, type SecretView } from "../registry/preflight.js";
import { probeImage } from "../registry/probe.js";

/** Where pull secrets are read from (a watch cache on the cluster). */
export interface PullSecretSource {
  lookup(name: string): Promise<SecretView | undefined>;
  /** Other namespaces holding a secret of this name (best effort). */
  elsewhere(name: string): Promise<string[]>;
}

export const ERROR_DOMAIN = "openshell.ai";

/** A FAILED_PRECONDITION carrying the stable reason code as google.rpc.ErrorInfo. */
export function pullPathError(reason: string, message: string, fix: string): ConnectError {
  return new ConnectError(`${reason}: ${message}; fix: ${fix}`, Code.FailedPrecondition, undefined, [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN }) },
  ]);
}

export class PullPathChecks {
  private readonly probeCa: Buffer | undefined;

  constructor(
    private readonly config: GatewayConfig,
    private readonly secrets: PullSecretSource | undefined,
    private readonly log: Logger,
  ) {
    this.probeCa = config.registryProbeCaFile ? readFileSync(config.registryProbeCaFile) : undefined;
  }

  /**
   * Everything preflight (and the probe, when enabled and preflight passed) finds for an image and its
   * pull secrets. A probe failure is an error finding; it blocks only in enforce mode.
   */
  async evaluate(image: string, secretNames: readonly string[]): Promise<PreflightFinding[]> {
    if (!this.secrets) return [];
    const secrets = this.secrets;
    const found = new Map<string, SecretView | undefined>();
    for (const name of secretNames) found.set(name, await secrets.lookup(name));
    const elsewhere = new Map<string, string[]>();
    for (const [name, secret] of found) if (!secret) elsewhere.set(name, await secrets.elsewhere(name));

    const findings = preflight({
      image,
      namespace: this.config.namespace,
      secretNames,
      lookup: (name) => found.get(name),
      elsewhere: (name) => elsewhere.get(name) ?? [],
      nodeCredentials: this.config.registryNodeCredentials,
    });
    if (!this.config.registryProbe || findings.some((f) => f.severity === "error")) return findings;

    const credential = [...found.values()]
      .filter((s): s is SecretView => s !== undefined)
      .flatMap((s) => {
        try {
          return parsePullSecret(s.type, s.data);
        } catch {
          return [];
        }
      })
      .find((c) => keyMatchesImage(c.key, image));
    const result = await probeImage({
      image,
      ...(credential ? { username: credential.username, password: credential.password } : {}),
      ...(this.probeCa ? { ca: this.probeCa } : {}),
      realmAllowList: this.config.registryProbeRealmAllowList,
      timeoutMs: this.config.registryProbeTimeoutSeconds * 1000,
    });
    if (result.ok) return findings;
    return [
      ...findings,
      {
        reason: result.reason,
        severity: "error",
        secret: undefined,
        message: `registry probe: ${result.message}`,
        fix: fixFor(result.reason),
      },
    ];
  }

  /** Runs preflight (and the probe when enabled); throws FAILED_PRECONDITION when the create must not go on. */
  async beforeCreate(sandbox: string, image: string, secretNames: readonly string[]): Promise<void> {
    const mode = this.config.pullSecretPreflight;
    if (mode === "off") return;
    const findings = await this.evaluate(image, secretNames);
    const [first] = blocking(findings, mode);
    if (first) throw pullPathError(first.reason, first.message, first.fix);
    for (const finding of findings) {
      this.log.warn({ sandbox, reason: finding.reason, fix: finding.fix }, finding.message);
    }
  }
}

export interface CurrentPullFailure {
  readonly reason: PullFailureReason;
  readonly message: string;
}

/**
 * The pull failure a sandbox is in now, from its waiting containers and recent events; undefined while
 * it is healthy or still pulling. A missing pull secret explains an auth failure better than the 401.
 */
export function currentPullFailure(
  observed: ObservedSandbox | undefined,
  events: readonly PlatformEvent[],
): CurrentPullFailure | undefined {
  if (!observed || observed.phase === "READY") return undefined;
  const missingSecret = [...events].reverse().find((e) => e.reason === "FailedToRetrieveImagePullSecret");
  for (const waiting of observed.waiting) {
    const classified = classifyPullFailure(waiting.reason, waiting.message);
    if (!classified) continue;
    if (classified.reason === "ImagePullAuthFailed" && missingSecret) {
      return { reason: "PullSecretMissing", message: `${missingSecret.message} ${waiting.message}` };
    }
    return { reason: classified.reason, message: waiting.message || waiting.reason };
  }
  // Without a waiting container, the newest pull-related event decides: a later Pulling means a retry is on.
  const latest = [...events]
    .reverse()
    .find((e) => ["Pulling", "Pulled", "Failed", "BackOff"].includes(e.reason));
  if (!latest || latest.reason === "Pulling" || latest.reason === "Pulled") return undefined;
  const classified = classifyPullFailure(latest.reason, latest.message);
  return classified ? { reason: classified.reason, message: latest.message } : undefined;
}
