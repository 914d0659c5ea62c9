import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  DOCKERCFG,
  DOCKERCONFIGJSON,
  buildDockerConfigJson,
  keyMatchesImage,
  parsePullSecret,
  serverKey,
} from "../../src/registry/dockerconfig.js";
import { classifyPullFailure } from "../../src/registry/classify.js";
import { blocking, preflight, type SecretView } from "../../src/registry/preflight.js";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

describe("dockerconfigjson", () => {
  test("built in the layout docker login writes: auths with username, password and auth", () => {
    const payload = JSON.parse(buildDockerConfigJson("127.0.0.1:5443", "robot", "s3cr:et")) as {
      auths: Record<string, { username: string; password: string; auth: string }>;
    };
    assert.deepEqual(payload, {
      auths: { "127.0.0.1:5443": { username: "robot", password: "s3cr:et", auth: b64("robot:s3cr:et") } },
    });
  });

  test("Docker Hub is keyed https://index.docker.io/v1/; other servers by bare host", () => {
    for (const hub of [
      "docker.io",
      "index.docker.io",
      "https://index.docker.io/v1/",
      "registry-1.docker.io",
    ]) {
      assert.equal(serverKey(hub), "https://index.docker.io/v1/", hub);
    }
    assert.equal(serverKey("https://registry.example.com:5000/"), "registry.example.com:5000");
    assert.equal(serverKey("registry.example.com/team"), "registry.example.com/team");
  });

  test("both secret types parse; auth is decoded when username/password are absent", () => {
    const json = { ".dockerconfigjson": b64(JSON.stringify({ auths: { "r.io": { auth: b64("u:p:w") } } })) };
    assert.deepEqual(parsePullSecret(DOCKERCONFIGJSON, json), [
      { key: "r.io", username: "u", password: "p:w" },
    ]);
    const cfg = { ".dockercfg": b64(JSON.stringify({ "https://r.io": { username: "a", password: "b" } })) };
    assert.deepEqual(parsePullSecret(DOCKERCFG, cfg), [
      { key: "https://r.io", username: "a", password: "b" },
    ]);
  });

  test("malformed payloads are rejected without echoing them", () => {
    const cases: [string, Record<string, string> | undefined, RegExp][] = [
      ["Opaque", { ".dockerconfigjson": b64("{}") }, /type Opaque, which the kubelet ignores/],
      [DOCKERCONFIGJSON, {}, /has no .dockerconfigjson key/],
      [DOCKERCONFIGJSON, { ".dockerconfigjson": b64("{not json password=hunter2") }, /is not valid JSON/],
      [
        DOCKERCONFIGJSON,
        { ".dockerconfigjson": b64(JSON.stringify({ "r.io": { auth: "x" } })) },
        /no "auths" object/,
      ],
    ];
    for (const [type, data, pattern] of cases) {
      assert.throws(
        () => parsePullSecret(type, data),
        (err: Error) => {
          assert.match(err.message, pattern);
          assert.doesNotMatch(err.message, /hunter2/);
          return true;
        },
      );
    }
  });
});

describe("matching secret keys to images, as the kubelet does", () => {
  const table: [string, string, boolean][] = [
    ["127.0.0.1:5443", "127.0.0.1:5443/team/agent:v1", true],
    ["127.0.0.1:5443", "127.0.0.1:5444/team/agent:v1", false],
    ["127.0.0.1", "127.0.0.1:5443/team/agent:v1", false],
    ["https://registry.example.com/v2/", "registry.example.com/a:1", true],
    ["http://registry.example.com", "registry.example.com/a:1", true],
    ["https://index.docker.io/v1/", "busybox", true],
    ["docker.io", "library/busybox:1.36", true],
    ["index.docker.io", "docker.io/team/agent", true],
    ["https://index.docker.io/v1/", "ghcr.io/team/agent", false],
    ["*.example.com", "registry.example.com/a", true],
    ["*.example.com", "a.b.example.com/a", false],
    ["*.example.com", "example.com/a", false],
    ["registry.example.com/team", "registry.example.com/team/agent:1", true],
    ["registry.example.com/team", "registry.example.com/teams/agent:1", false],
    ["registry.example.com/team/agent", "registry.example.com/team/agent:1", true],
  ];
  for (const [key, image, expected] of table) {
    test(`${key} ${expected ? "covers" : "does not cover"} ${image}`, () => {
      assert.equal(keyMatchesImage(key, image), expected);
    });
  }
});

describe("pull failure classification", () => {
  // Messages in the forms containerd 1.6 and the kubelet produce.
  const table: [string, string, string | undefined][] = [
    [
      "ErrImagePull",
      'failed to pull and unpack image "127.0.0.1:5443/team/agent:v1": failed to resolve reference "127.0.0.1:5443/team/agent:v1": pulling from host 127.0.0.1:5443 failed with status code [manifests v1]: 401 Unauthorized',
      "ImagePullAuthFailed",
    ],
    [
      "ErrImagePull",
      'failed to pull and unpack image "127.0.0.1:5443/team/agent:nope": failed to resolve reference "127.0.0.1:5443/team/agent:nope": 127.0.0.1:5443/team/agent:nope: not found',
      "ImageNotFound",
    ],
    [
      "ErrImagePull",
      'failed to pull and unpack image "r.io/a:1": failed to resolve reference "r.io/a:1": failed to do request: Head "https://r.io/v2/a/manifests/1": dial tcp 127.0.0.1:5999: connect: connection refused',
      "RegistryUnreachable",
    ],
    [
      "ErrImagePull",
      'failed to pull and unpack image "r.io/a:1": failed to resolve reference "r.io/a:1": failed to do request: Head "https://r.io/v2/a/manifests/1": tls: failed to verify certificate: x509: certificate signed by unknown authority',
      "RegistryTLSError",
    ],
    ["ErrImagePull", "toomanyrequests: You have reached your pull rate limit", "RateLimited"],
    ["ImagePullBackOff", 'Back-off pulling image "127.0.0.1:5443/team/agent:v1"', "ImagePullFailed"],
    [
      "InvalidImageName",
      'Failed to apply default image tag "Bad//Name": couldn\'t parse image name',
      "InvalidImageName",
    ],
    ["ErrImageNeverPull", 'Container image "x:1" is not present with pull policy of Never', "ImageNeverPull"],
    [
      "FailedToRetrieveImagePullSecret",
      "Unable to retrieve some image pull secrets (missing-cred); attempting to pull the image may not succeed.",
      "PullSecretMissing",
    ],
    ["BackOff", "Back-off restarting failed container agent in pod demo", undefined],
    ["Started", "Started container agent", undefined],
  ];
  for (const [reason, message, expected] of table) {
    test(`${reason}: ${expected ?? "not a pull failure"}`, () => {
      assert.equal(classifyPullFailure(reason, message)?.reason, expected);
    });
  }

  test("every class comes with a fix", () => {
    const result = classifyPullFailure("ErrImagePull", "401 Unauthorized")!;
    assert.match(result.fix, /openshell registry secret update/);
  });
});

describe("preflight", () => {
  const good: SecretView = {
    name: "regcred",
    namespace: "sbx",
    type: DOCKERCONFIGJSON,
    data: { ".dockerconfigjson": b64(buildDockerConfigJson("127.0.0.1:5443", "u", "p")) },
  };
  const secrets = new Map<string, SecretView>([
    ["regcred", good],
    [
      "hub",
      {
        ...good,
        name: "hub",
        data: { ".dockerconfigjson": b64(buildDockerConfigJson("docker.io", "u", "p")) },
      },
    ],
    ["opaque", { ...good, name: "opaque", type: "Opaque" }],
    ["broken", { ...good, name: "broken", data: { ".dockerconfigjson": b64("nope") } }],
    [
      "empty",
      {
        ...good,
        name: "empty",
        data: { ".dockerconfigjson": b64(JSON.stringify({ auths: { "r.io": {} } })) },
      },
    ],
  ]);
  const run = (names: string[], image = "127.0.0.1:5443/team/agent:v1", nodeCredentials = false) =>
    preflight({
      image,
      namespace: "sbx",
      secretNames: names,
      lookup: (n) => secrets.get(n),
      elsewhere: (n) => (n === "other-ns" ? ["team-a"] : []),
      nodeCredentials,
    });

  test("a matching secret passes", () => {
    assert.deepEqual(run(["regcred"]), []);
    assert.deepEqual(run(["hub", "regcred"]), []);
  });

  test("each problem has its reason code and a fix", () => {
    const cases: [string[], string, RegExp][] = [
      [["missing"], "PullSecretMissing", /"missing" does not exist in namespace "sbx"$/],
      [
        ["other-ns"],
        "PullSecretMissing",
        /exists in namespace "team-a"; pods can only use secrets in their own namespace/,
      ],
      [["opaque"], "PullSecretWrongType", /has type Opaque; the kubelet only reads/],
      [["broken"], "PullSecretMalformed", /is not valid JSON/],
      [["empty"], "PullSecretNoCredentials", /holds no username\/password/],
      [
        ["hub"],
        "PullSecretNoMatchingRegistry",
        /none of the pull secrets \(hub\) has credentials for registry 127.0.0.1:5443/,
      ],
    ];
    for (const [names, reason, pattern] of cases) {
      const findings = run(names);
      assert.equal(findings.length, 1, JSON.stringify(findings));
      assert.equal(findings[0]!.reason, reason);
      assert.match(findings[0]!.message, pattern);
      assert.ok(findings[0]!.fix.length > 0);
    }
  });

  test("no host match is only a warning when nodes may carry credentials", () => {
    const findings = run(["hub"], undefined, true);
    assert.equal(findings[0]!.severity, "warning");
    assert.deepEqual(blocking(findings, "enforce"), []);
  });

  test("enforce blocks on errors; warn and off never block", () => {
    const findings = run(["missing"]);
    assert.equal(blocking(findings, "enforce").length, 1);
    assert.equal(blocking(findings, "warn").length, 0);
    assert.equal(blocking(findings, "off").length, 0);
  });
});
