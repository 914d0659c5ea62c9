// Upstream's published Python SDK (PyPI openshell==0.1.5), installed into a virtualenv outside the tree.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;

/** The SDK's interpreter; installing it is part of the test (a failure fails the test). */
export function sdkPython(): string {
  return execFileSync("bash", [join(ROOT, "scripts/proto-sdk-venv.sh")], { encoding: "utf8" }).trim();
}
