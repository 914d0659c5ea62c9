// Validators for what the renderer produces, built from upstream's own published schemas: the Pod schema
// from the Kubernetes OpenAPI document and the Sandbox schemas from the agent-sandbox CRD, both read from
// the Go module cache at the versions the test bed pins (downloaded through the Go module proxy if absent).
// Objects are validated strictly: an unknown field is an error, as with server-side field validation.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { parse as parseYaml } from "yaml";

const ROOT = new URL("../..", import.meta.url).pathname;

function pinned(name: string): string {
  const text = readFileSync(join(ROOT, "testbed/versions.env"), "utf8");
  const match = new RegExp(`^${name}=(\\S+)`, "m").exec(text);
  if (!match) throw new Error(`testbed/versions.env does not pin ${name}`);
  return match[1]!;
}

function moduleDir(module: string, version: string): string {
  const cache = execFileSync("go", ["env", "GOMODCACHE"], { encoding: "utf8" }).trim();
  const dir = join(cache, module, `@${version}`).replace(`/@${version}`, `@${version}`);
  if (!existsSync(dir)) {
    const out = execFileSync("go", ["mod", "download", "-json", `${module}@${version}`], {
      encoding: "utf8",
      env: { ...process.env, GOFLAGS: "-mod=mod" },
    });
    const info = JSON.parse(out) as { Dir?: string; Error?: string };
    if (!info.Dir) throw new Error(`go mod download ${module}@${version} failed: ${info.Error ?? out}`);
    return info.Dir;
  }
  return dir;
}

type Schema = Record<string, unknown>;

/** Marks every object schema that lists its properties as closed, unless it preserves unknown fields. */
function closeObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closeObjects);
  if (typeof node !== "object" || node === null) return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node))
    out[k] = k === "properties" ? mapValues(v as Schema) : closeObjects(v);
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    !out["x-kubernetes-preserve-unknown-fields"]
  ) {
    out.additionalProperties = false;
  }
  return out;
}

function mapValues(props: Schema): Schema {
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, closeObjects(v)]));
}

function newAjv(): Ajv {
  return new Ajv({ strict: false, validateFormats: false, allErrors: true });
}

let podValidator: ValidateFunction | undefined;

export function validatePod(): ValidateFunction {
  if (!podValidator) {
    const dir = moduleDir("k8s.io/kubernetes", pinned("KUBE_VERSION"));
    const doc = JSON.parse(readFileSync(join(dir, "api/openapi-spec/v3/api__v1_openapi.json"), "utf8")) as {
      components: Schema;
    };
    podValidator = newAjv().compile({
      $ref: "#/components/schemas/io.k8s.api.core.v1.Pod",
      components: closeObjects(doc.components),
    });
  }
  return podValidator;
}

const sandboxValidators = new Map<string, ValidateFunction>();

export function validateSandbox(version: "v1beta1" | "v1alpha1"): ValidateFunction {
  let validator = sandboxValidators.get(version);
  if (!validator) {
    const dir = moduleDir("sigs.k8s.io/agent-sandbox", pinned("AGENT_SANDBOX_VERSION"));
    const crd = parseYaml(readFileSync(join(dir, "k8s/crds/agents.x-k8s.io_sandboxes.yaml"), "utf8")) as {
      spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
    };
    const entry = crd.spec.versions.find((v) => v.name === version);
    if (!entry) throw new Error(`the agent-sandbox CRD does not serve ${version}`);
    const schema = closeObjects(entry.schema.openAPIV3Schema) as Schema;
    // metadata is validated by the API server itself, not by the CRD schema.
    (schema.properties as Schema).metadata = { type: "object" };
    validator = newAjv().compile(schema);
    sandboxValidators.set(version, validator);
  }
  return validator;
}

export function schemaErrors(validate: ValidateFunction, value: unknown): string[] {
  return validate(value)
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""} ${JSON.stringify(e.params)}`);
}
