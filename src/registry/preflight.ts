// Pull-secret preflight: before any Kubernetes object exists, check that every referenced secret exists
// in the sandbox's namespace, has a type the kubelet reads, parses, holds credentials, and that some secret
// covers the image's registry. Pure: the caller passes what its secret cache knows.

import {
  DOCKERCFG,
  DOCKERCONFIGJSON,
  DockerConfigError,
  keyMatchesImage,
  parsePullSecret,
  registryHost,
} from "./dockerconfig.js";
import type { PullFailureReason } from "./classify.js";

export type PreflightMode = "enforce" | "warn" | "off";
export const PREFLIGHT_MODES: readonly PreflightMode[] = ["enforce", "warn", "off"];

export type PreflightReason =
  | "PullSecretMissing"
  | "PullSecretWrongType"
  | "PullSecretMalformed"
  | "PullSecretNoCredentials"
  | "PullSecretNoMatchingRegistry";

export interface SecretView {
  readonly name: string;
  readonly namespace: string;
  readonly type: string;
  /** Base64 values, as in the Secret object. */
  readonly data: Readonly<Record<string, string>> | undefined;
}

export interface PreflightFinding {
  /** A preflight reason, or a pull failure class when the registry probe found the problem. */
  readonly reason: PreflightReason | PullFailureReason;
  /** An error stops the create in enforce mode; a warning never does. */
  readonly severity: "error" | "warning";
  readonly secret: string | undefined;
  readonly message: string;
  readonly fix: string;
}

export interface PreflightInput {
  readonly image: string;
  readonly namespace: string;
  readonly secretNames: readonly string[];
  /** The secret in the sandbox namespace, or undefined when it does not exist (or is not visible). */
  readonly lookup: (name: string) => SecretView | undefined;
  /** Other namespaces the gateway can see that hold a secret of this name (for a better message). */
  readonly elsewhere?: (name: string) => readonly string[];
  /** Nodes may carry their own credentials (credential providers): a missing host match is only a warning. */
  readonly nodeCredentials?: boolean;
}

function createFix(name: string, namespace: string, server: string): string {
  return `create it with 'openshell registry secret create ${name} --namespace ${namespace} --server ${server} --username USER --password-stdin' or 'kubectl create secret docker-registry ${name} -n ${namespace} --docker-server=${server} --docker-username=USER --docker-password=…'`;
}

export function preflight(input: PreflightInput): PreflightFinding[] {
  const findings: PreflightFinding[] = [];
  const server = registryHost(input.image);
  let anyMatch = false;
  let anyUsable = false;

  for (const name of input.secretNames) {
    const secret = input.lookup(name);
    if (!secret) {
      const other = input.elsewhere?.(name) ?? [];
      findings.push({
        reason: "PullSecretMissing",
        severity: "error",
        secret: name,
        message:
          other.length > 0
            ? `pull secret "${name}" does not exist in namespace "${input.namespace}" (it exists in namespace${other.length > 1 ? "s" : ""} ${other.map((n) => `"${n}"`).join(", ")}; pods can only use secrets in their own namespace)`
            : `pull secret "${name}" does not exist in namespace "${input.namespace}"`,
        fix:
          other.length > 0
            ? `copy it: kubectl get secret ${name} -n ${other[0]} -o json | jq 'del(.metadata.namespace,.metadata.uid,.metadata.resourceVersion,.metadata.creationTimestamp,.metadata.ownerReferences)' | kubectl apply -n ${input.namespace} -f -  (or ${createFix(name, input.namespace, server)})`
            : createFix(name, input.namespace, server),
      });
      continue;
    }
    if (secret.type !== DOCKERCONFIGJSON && secret.type !== DOCKERCFG) {
      findings.push({
        reason: "PullSecretWrongType",
        severity: "error",
        secret: name,
        message: `pull secret "${name}" in namespace "${input.namespace}" has type ${secret.type || "Opaque"}; the kubelet only reads ${DOCKERCONFIGJSON} and ${DOCKERCFG} secrets and silently ignores others`,
        fix: `recreate it with type ${DOCKERCONFIGJSON}: ${createFix(name, input.namespace, server)}`,
      });
      continue;
    }
    let credentials;
    try {
      credentials = parsePullSecret(secret.type, secret.data);
    } catch (err) {
      findings.push({
        reason: "PullSecretMalformed",
        severity: "error",
        secret: name,
        message: `pull secret "${name}" in namespace "${input.namespace}" ${err instanceof DockerConfigError ? err.message : "cannot be parsed"}`,
        fix: `recreate it: ${createFix(name, input.namespace, server)}`,
      });
      continue;
    }
    if (credentials.length === 0) {
      findings.push({
        reason: "PullSecretNoCredentials",
        severity: "error",
        secret: name,
        message: `pull secret "${name}" in namespace "${input.namespace}" holds no username/password or auth entry`,
        fix: `recreate it with credentials: ${createFix(name, input.namespace, server)}`,
      });
      continue;
    }
    anyUsable = true;
    if (credentials.some((c) => keyMatchesImage(c.key, input.image))) anyMatch = true;
  }

  if (anyUsable && !anyMatch) {
    findings.push({
      reason: "PullSecretNoMatchingRegistry",
      severity: input.nodeCredentials ? "warning" : "error",
      secret: undefined,
      message: `none of the pull secrets (${input.secretNames.join(", ")}) has credentials for registry ${server}, which image ${input.image} is pulled from`,
      fix: `add credentials for ${server}: ${createFix("NAME", input.namespace, server)}, then pass --image-pull-secret NAME`,
    });
  }
  return findings;
}

/** The findings that stop a create in the given mode. */
export function blocking(findings: readonly PreflightFinding[], mode: PreflightMode): PreflightFinding[] {
  return mode === "enforce" ? findings.filter((f) => f.severity === "error") : [];
}
