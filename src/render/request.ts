// A sandbox request as the driver sees it, and its validation. Pure: every problem is a FieldError that
// names the field, the value and the fix; callers turn it into exit code 2 or INVALID_ARGUMENT.

import { MAX_PULL_SECRETS } from "../config/settings.js";
import { imageReferenceProblem } from "../registry/image-reference.js";
import {
  describeValue,
  dns1035Label,
  dns1123Subdomain,
  envVarName,
  labelValue,
  qualifiedName,
  quantity,
} from "../validation/kubernetes-names.js";

export const DEFAULT_WORKSPACE = "default";
export const MANAGED_LABEL_PREFIX = "openshell.ai/";

/** Limits at least as strict as upstream's gateway (grpc/mod.rs). */
export const LIMITS = {
  environmentEntries: 128,
  environmentKey: 256,
  environmentValue: 8192,
  templateString: 1024,
  mapEntries: 128,
  annotationsBytes: 64 * 1024,
  commandEntries: 128,
  commandEntry: 8192,
  tolerations: 32,
  gpus: 16,
} as const;

/** Environment variables the driver sets itself; a request may not set them. */
export const RESERVED_ENV = [
  "OPENSHELL_SANDBOX_ID",
  "OPENSHELL_SANDBOX",
  "OPENSHELL_ENDPOINT",
  "OPENSHELL_TLS_CA",
  "OPENSHELL_TLS_CERT",
  "OPENSHELL_TLS_KEY",
] as const;

export interface Toleration {
  readonly key?: string;
  readonly operator?: "Exists" | "Equal";
  readonly value?: string;
  readonly effect?: "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  readonly tolerationSeconds?: number;
}

export interface ResourceList {
  readonly cpu?: string;
  readonly memory?: string;
}

export interface SandboxRequest {
  readonly id: string;
  readonly name: string;
  readonly workspace?: string;
  /** Empty or absent: the configured default image. */
  readonly image?: string;
  readonly environment?: Readonly<Record<string, string>>;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  /** Labels for the pod (the sandbox's template labels). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Annotations for the pod. */
  readonly annotations?: Readonly<Record<string, string>>;
  readonly resources?: { readonly requests?: ResourceList; readonly limits?: ResourceList };
  /** Number of GPUs (nvidia.com/gpu); 0 or absent for none. */
  readonly gpu?: number;
  readonly runtimeClassName?: string;
  readonly nodeSelector?: Readonly<Record<string, string>>;
  readonly tolerations?: readonly Toleration[];
  /** Per-sandbox pull secrets, added after the configured and service-account ones. */
  readonly imagePullSecrets?: readonly string[];
}

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export function formatFieldError(error: FieldError): string {
  return `invalid ${error.field}: ${error.message}`;
}

/** At most this many problems go into one message: a request with 10,000 bad keys still gets one short line. */
const MAX_REPORTED_ERRORS = 5;

/** All problems as one line (the first few, then a count). */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  const shown = errors.slice(0, MAX_REPORTED_ERRORS).map(formatFieldError).join("; ");
  const rest = errors.length - MAX_REPORTED_ERRORS;
  return rest > 0 ? `${shown}; and ${rest} more` : shown;
}

/** A map key inside a field name (`labels[key]`): as it is when printable and short, else quoted and escaped. */
export function keyInField(key: string): string {
  return /^[\x21-\x7e]{1,80}$/.test(key) && !/[[\]"]/.test(key) ? key : describeValue(key, 40);
}

const bytes = (text: string) => Buffer.byteLength(text, "utf8");

/** The Kubernetes object name for a sandbox: the bare name in the default workspace, `{workspace}--{name}` otherwise. */
export function kubernetesName(name: string, workspace: string | undefined): string {
  return !workspace || workspace === DEFAULT_WORKSPACE ? name : `${workspace}--${name}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function validateSandboxRequest(req: SandboxRequest): FieldError[] {
  const errors: FieldError[] = [];
  const fail = (field: string, value: unknown, reason: string) =>
    errors.push({ field, message: `${describeValue(value)} ${reason}` });

  if (!UUID.test(req.id)) fail("id", req.id, "must be a lowercase UUID");
  const nameReason = dns1035Label(req.name);
  if (nameReason) fail("name", req.name, nameReason);
  if (req.workspace !== undefined && req.workspace !== "") {
    const reason = dns1035Label(req.workspace);
    if (reason) fail("workspace", req.workspace, reason);
  }
  if (!nameReason) {
    const full = kubernetesName(req.name, req.workspace);
    if (full.length > 63) {
      fail(
        "name",
        req.name,
        `is too long for workspace ${describeValue(req.workspace)}: the object name ${describeValue(full)} must be at most 63 characters`,
      );
    }
  }
  if (req.image !== undefined && req.image !== "") {
    const reason = imageReferenceProblem(req.image);
    if (reason) fail("image", req.image, reason);
  }

  const env = Object.entries(req.environment ?? {});
  if (env.length > LIMITS.environmentEntries) {
    errors.push({
      field: "environment",
      message: `has ${env.length} entries; at most ${LIMITS.environmentEntries} are allowed`,
    });
  }
  for (const [key, value] of env) {
    const reason = envVarName(key);
    if (reason) fail("environment key", key, reason);
    else if ((RESERVED_ENV as readonly string[]).includes(key)) {
      fail(`environment[${keyInField(key)}]`, key, "is set by the gateway itself; use another name");
    }
    // Upstream counts bytes; so do we (a character can take up to four).
    if (bytes(value) > LIMITS.environmentValue) {
      fail(
        `environment[${keyInField(key)}]`,
        value,
        `must be at most ${LIMITS.environmentValue} characters (UTF-8 bytes, as upstream counts)`,
      );
    }
    if (value.includes("\0")) {
      fail(
        `environment[${keyInField(key)}]`,
        value,
        "must not contain NUL characters (a process environment cannot hold them)",
      );
    }
  }

  const command = [...(req.command ?? []), ...(req.args ?? [])];
  if (command.length > LIMITS.commandEntries) {
    errors.push({
      field: "command",
      message: `has ${command.length} entries; at most ${LIMITS.commandEntries}`,
    });
  }
  (req.command ?? []).forEach((part, i) => {
    if (bytes(part) > LIMITS.commandEntry)
      fail(
        `command[${i}]`,
        part,
        `must be at most ${LIMITS.commandEntry} characters (UTF-8 bytes, as upstream counts)`,
      );
    if (part.includes("\0")) fail(`command[${i}]`, part, "must not contain NUL characters");
  });

  validateMap(errors, "labels", req.labels, labelValue, true);
  validateMap(errors, "node selector", req.nodeSelector, labelValue, false);
  validateAnnotations(errors, "annotations", req.annotations, true);

  for (const kind of ["requests", "limits"] as const) {
    const list = req.resources?.[kind];
    for (const resource of ["cpu", "memory"] as const) {
      const value = list?.[resource];
      if (value === undefined || value === "") continue;
      const reason = quantity(value);
      if (reason) fail(`resources.${kind}.${resource}`, value, reason);
    }
  }
  if (req.gpu !== undefined && (!Number.isSafeInteger(req.gpu) || req.gpu < 0 || req.gpu > LIMITS.gpus)) {
    fail("gpu", req.gpu, `must be a whole number from 0 to ${LIMITS.gpus}`);
  }
  if (req.runtimeClassName) {
    const reason = dns1123Subdomain(req.runtimeClassName);
    if (reason) fail("runtime class name", req.runtimeClassName, reason);
  }

  const tolerations = req.tolerations ?? [];
  if (tolerations.length > LIMITS.tolerations) {
    errors.push({
      field: "tolerations",
      message: `has ${tolerations.length}; at most ${LIMITS.tolerations}`,
    });
  }
  tolerations.forEach((t, i) => validateToleration(errors, `tolerations[${i}]`, t));

  const secrets = req.imagePullSecrets ?? [];
  const distinct = new Set(secrets.map((s) => s.trim()).filter((s) => s !== ""));
  if (distinct.size > MAX_PULL_SECRETS) {
    errors.push({
      field: "image pull secrets",
      message: `lists ${distinct.size} secrets; at most ${MAX_PULL_SECRETS} are allowed`,
    });
  }
  for (const secret of distinct) {
    const reason = dns1123Subdomain(secret);
    if (reason) fail("image pull secret", secret, reason);
  }
  return errors;
}

/**
 * The sandbox's own labels and annotations (metadata, not the pod's): the same Kubernetes rules and
 * limits as the template's, so that what is stored and selected on is bounded too.
 */
export function validateMetadata(
  labels: Readonly<Record<string, string>> | undefined,
  annotations: Readonly<Record<string, string>> | undefined,
): FieldError[] {
  const errors: FieldError[] = [];
  validateMap(errors, "labels", labels, labelValue, false);
  validateAnnotations(errors, "annotations", annotations, false);
  return errors;
}

function validateAnnotations(
  errors: FieldError[],
  field: string,
  annotations: Readonly<Record<string, string>> | undefined,
  forbidManagedPrefix: boolean,
): void {
  validateMap(errors, field, annotations, () => undefined, forbidManagedPrefix);
  const total = Object.entries(annotations ?? {}).reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
  if (total > LIMITS.annotationsBytes) {
    errors.push({
      field,
      message: `total ${total} bytes; at most ${LIMITS.annotationsBytes} bytes are allowed`,
    });
  }
}

function validateMap(
  errors: FieldError[],
  field: string,
  map: Readonly<Record<string, string>> | undefined,
  checkValue: (v: string) => string | undefined,
  forbidManagedPrefix: boolean,
): void {
  const entries = Object.entries(map ?? {});
  if (entries.length > LIMITS.mapEntries) {
    errors.push({
      field,
      message: `has ${entries.length} entries; at most ${LIMITS.mapEntries} are allowed`,
    });
  }
  for (const [key, value] of entries) {
    const keyReason = qualifiedName(key);
    if (keyReason) {
      errors.push({ field: `${field} key`, message: `${describeValue(key)} ${keyReason}` });
    } else if (forbidManagedPrefix && key.startsWith(MANAGED_LABEL_PREFIX)) {
      errors.push({
        field: `${field} key`,
        message: `${describeValue(key)} uses the reserved prefix ${MANAGED_LABEL_PREFIX}; choose another prefix`,
      });
    }
    const valueReason = checkValue(value);
    if (valueReason)
      errors.push({
        field: `${field}[${keyInField(key)}]`,
        message: `${describeValue(value)} ${valueReason}`,
      });
  }
}

const EFFECTS = ["", "NoSchedule", "PreferNoSchedule", "NoExecute"];

function validateToleration(errors: FieldError[], field: string, t: Toleration): void {
  const operator = t.operator ?? "Equal";
  if (operator !== "Exists" && operator !== "Equal") {
    errors.push({
      field: `${field}.operator`,
      message: `${describeValue(operator)} must be Exists or Equal`,
    });
  }
  if (t.key !== undefined && t.key !== "") {
    const reason = qualifiedName(t.key);
    if (reason) errors.push({ field: `${field}.key`, message: `${describeValue(t.key)} ${reason}` });
  } else if (operator !== "Exists") {
    errors.push({ field: `${field}.key`, message: "must be set unless operator is Exists" });
  }
  if (operator === "Exists" && t.value) {
    errors.push({ field: `${field}.value`, message: "must be empty when operator is Exists" });
  }
  if (t.value) {
    const reason = labelValue(t.value);
    if (reason) errors.push({ field: `${field}.value`, message: `${describeValue(t.value)} ${reason}` });
  }
  if (t.effect !== undefined && !EFFECTS.includes(t.effect)) {
    errors.push({
      field: `${field}.effect`,
      message: `${describeValue(t.effect)} must be NoSchedule, PreferNoSchedule or NoExecute (or empty)`,
    });
  }
  if (t.tolerationSeconds !== undefined && t.effect !== "NoExecute") {
    errors.push({ field: `${field}.tolerationSeconds`, message: "is only allowed with effect NoExecute" });
  }
}
