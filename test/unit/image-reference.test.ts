import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  applyRegistryMirrors,
  formatImageReference,
  imageReferenceProblem,
  parseImageReference,
} from "../../src/registry/image-reference.js";

describe("parseImageReference", () => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    ["busybox", "docker.io", "library/busybox", undefined, undefined],
    ["nginx:1.27", "docker.io", "library/nginx", "1.27", undefined],
    ["index.docker.io/team/agent", "docker.io", "team/agent", undefined, undefined],
    ["127.0.0.1:5443/team/agent:v1", "127.0.0.1:5443", "team/agent", "v1", undefined],
    ["localhost/agent", "localhost", "agent", undefined, undefined],
    ["ghcr.io/a/b/c:0.1@sha256:" + "a".repeat(64), "ghcr.io", "a/b/c", "0.1", "sha256:" + "a".repeat(64)],
  ];
  for (const [text, registry, repository, tag, digest] of cases) {
    test(text.slice(0, 40), () => {
      assert.deepEqual(parseImageReference(text), { registry, repository, tag, digest });
    });
  }

  test("invalid references say why and how", () => {
    assert.match(
      imageReferenceProblem("Foo/Bar")!,
      /repository name must be lowercase.*\[registry\[:port\]\/\]repository/,
    );
    assert.match(imageReferenceProblem(" busybox")!, /white space/);
    assert.match(imageReferenceProblem("")!, /must not be empty/);
    assert.match(imageReferenceProblem("a@sha256:abc")!, /not a valid image reference/);
  });

  test("formatting fills in latest only when there is neither tag nor digest", () => {
    assert.equal(formatImageReference(parseImageReference("busybox")), "docker.io/library/busybox:latest");
    const d = "sha256:" + "b".repeat(64);
    assert.equal(formatImageReference(parseImageReference(`x.io/a@${d}`)), `x.io/a@${d}`);
  });
});

describe("applyRegistryMirrors", () => {
  const mirrors = {
    "docker.io": "mirror.corp/hub",
    "docker.io/library": "mirror.corp/official",
    "quay.io/team": "mirror.corp:5000/quay-team",
  };

  test("the longest matching prefix wins, at a path boundary", () => {
    assert.equal(
      applyRegistryMirrors("busybox:1.36", mirrors).effective,
      "mirror.corp/official/busybox:1.36",
    );
    assert.equal(applyRegistryMirrors("team/agent", mirrors).effective, "mirror.corp/hub/team/agent:latest");
    assert.equal(
      applyRegistryMirrors("quay.io/team/x:1", mirrors).effective,
      "mirror.corp:5000/quay-team/x:1",
    );
    assert.equal(applyRegistryMirrors("quay.io/teamx/x:1", mirrors).effective, "quay.io/teamx/x:1");
  });

  test("Docker Hub aliases in rules and references are normalised", () => {
    const hub = { "index.docker.io": "m.corp/hub" };
    assert.equal(
      applyRegistryMirrors("docker.io/library/busybox", hub).effective,
      "m.corp/hub/library/busybox:latest",
    );
    assert.equal(applyRegistryMirrors("index.docker.io/x/y:1", hub).effective, "m.corp/hub/x/y:1");
  });

  test("no match leaves the reference untouched; digests survive", () => {
    const d = "sha256:" + "c".repeat(64);
    assert.deepEqual(applyRegistryMirrors("ghcr.io/a:1", mirrors), {
      requested: "ghcr.io/a:1",
      effective: "ghcr.io/a:1",
      rule: undefined,
    });
    assert.equal(
      applyRegistryMirrors(`busybox@${d}`, mirrors).effective,
      `mirror.corp/official/busybox@${d}`,
    );
  });
});
