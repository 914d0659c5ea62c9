// The registry probe against the test bed's real registry (TLS + htpasswd, Debian's docker-registry),
// and the Bearer token flow against a small token server of our own (Docker Hub-style realms).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseChallenge, probeImage } from "../../src/registry/probe.js";
import { pushTestImage, requireCluster, type RegistryInfo } from "../support/cluster.js";

describe("probe: the real authenticated TLS registry", () => {
  let registry: RegistryInfo;
  let image: string;
  let ca: Buffer;
  before(async () => {
    registry = (await requireCluster("api")).registry;
    image = await pushTestImage("openshell-test/probe", "v1");
    ca = readFileSync(registry.caPath);
  });

  test("right credentials: the manifest exists, with its digest", async () => {
    const result = await probeImage({ image, username: registry.user, password: registry.password, ca });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match((result as { digest: string }).digest, /^sha256:[0-9a-f]{64}$/);
  });

  test("wrong password: ImagePullAuthFailed, and the password is not in the message", async () => {
    const result = await probeImage({
      image,
      username: registry.user,
      password: "not-the-password-canary",
      ca,
    });
    assert.deepEqual(result.ok ? undefined : result.reason, "ImagePullAuthFailed");
    assert.doesNotMatch(JSON.stringify(result), /not-the-password-canary/);
  });

  test("no credentials: ImagePullAuthFailed", async () => {
    const result = await probeImage({ image, ca });
    assert.equal(result.ok ? undefined : result.reason, "ImagePullAuthFailed");
  });

  test("unknown tag: ImageNotFound", async () => {
    const result = await probeImage({
      image: image.replace(/:v1$/, ":no-such-tag"),
      username: registry.user,
      password: registry.password,
      ca,
    });
    assert.equal(result.ok ? undefined : result.reason, "ImageNotFound");
  });

  test("certificate not trusted: RegistryTLSError", async () => {
    const result = await probeImage({ image, username: registry.user, password: registry.password });
    assert.equal(result.ok ? undefined : result.reason, "RegistryTLSError");
  });

  test("nothing listening: RegistryUnreachable", async () => {
    const result = await probeImage({
      image: "127.0.0.1:1/team/agent:v1",
      username: "u",
      password: "p",
      ca,
      timeoutMs: 2000,
    });
    assert.equal(result.ok ? undefined : result.reason, "RegistryUnreachable");
  });
});

describe("probe: Bearer token realms", () => {
  let registry: Server;
  let base: string;
  const seen: { path: string; authorization: string | undefined }[] = [];
  before(async () => {
    registry = createServer((req, res) => {
      seen.push({ path: req.url ?? "", authorization: req.headers.authorization });
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/token") {
        const ok = req.headers.authorization === `Basic ${Buffer.from("robot:pw").toString("base64")}`;
        res
          .writeHead(ok ? 200 : 401, { "content-type": "application/json" })
          .end(ok ? JSON.stringify({ token: "tkn" }) : "{}");
        return;
      }
      if (req.headers.authorization !== "Bearer tkn") {
        res
          .writeHead(401, {
            "www-authenticate": `Bearer realm="${base}/token",service="test",scope="repository:team/agent:pull"`,
          })
          .end();
        return;
      }
      res
        .writeHead(url.pathname.endsWith("/v1") ? 200 : 404, { "docker-content-digest": "sha256:abc" })
        .end();
    });
    await new Promise<void>((resolve) => registry.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });
  after(() => registry.close());

  const image = () => `${base.replace("http://", "")}/team/agent:v1`;

  test("the token is fetched from the realm with Basic credentials, then used for the manifest", async () => {
    const result = await probeImage({
      image: image(),
      username: "robot",
      password: "pw",
      insecureHttp: true,
    });
    assert.deepEqual(result, { ok: true, digest: "sha256:abc" });
    const tokenCall = seen.find((s) => s.path.startsWith("/token"))!;
    assert.match(tokenCall.path, /service=test/);
    assert.match(tokenCall.path, /scope=repository%3Ateam%2Fagent%3Apull/);
  });

  test("a realm on another host never receives credentials", async () => {
    const foreign = createServer((req, res) => {
      res
        .writeHead(401, { "www-authenticate": 'Bearer realm="http://198.18.255.254/token",service="x"' })
        .end();
      void req;
    });
    await new Promise<void>((resolve) => foreign.listen(0, "127.0.0.1", resolve));
    try {
      const result = await probeImage({
        image: `127.0.0.1:${(foreign.address() as AddressInfo).port}/team/agent:v1`,
        username: "robot",
        password: "pw",
        insecureHttp: true,
      });
      assert.equal(result.ok, false);
      assert.match(
        (result as { message: string }).message,
        /credentials are not sent there unless the host is on the registry probe's realm allow-list/,
      );
    } finally {
      foreign.close();
    }
  });

  test("WWW-Authenticate parsing", () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/busybox:pull",
        },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), {
      scheme: "basic",
      params: { realm: "Registry Realm" },
    });
  });
});
