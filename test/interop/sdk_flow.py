"""Drives our gateway with upstream's published Python SDK (openshell==0.1.5), the way a user would:
create a sandbox from an image, wait until READY, run a command, delete it and wait until it is gone.
Prints one JSON line per step; exits non-zero on the first failure. Used by the interop tests."""

import json
import sys

import openshell
from openshell import SandboxClient, TlsConfig
from openshell._proto import openshell_pb2

endpoint, token, image, name, ready_timeout = sys.argv[1:6]
ca = sys.argv[6] if len(sys.argv) > 6 else ""


def out(step, value):
    print(json.dumps({"step": step, "result": value}), flush=True)


tls = TlsConfig(ca_path=ca) if ca else None
with SandboxClient(endpoint, tls=tls, bearer_token=token or None, timeout=30) as client:
    health = client.health()
    out("health", {"status": health.status, "version": health.version})
    spec = openshell_pb2.SandboxSpec(template=openshell_pb2.SandboxTemplate(image=image)) if image else None
    created = client.create(workspace="default", name=name, spec=spec, labels={"suite": "interop"})
    out("create", {"id": created.id, "name": created.name, "phase": int(created.phase)})
    ready = client.wait_ready(name, workspace="default", timeout_seconds=float(ready_timeout))
    out("wait_ready", {"phase": int(ready.phase)})
    listed = [s.name for s in client.list_all(workspace="default")]
    out("list", listed)
    result = client.exec(name, ["echo", "ok"], workspace="default", timeout_seconds=60)
    out("exec", {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr})
    failing = client.exec(name, ["sh", "-c", "echo err >&2; exit 3"], workspace="default", timeout_seconds=60)
    out("exec_failing", {"exit_code": failing.exit_code, "stderr": failing.stderr})
    deleted = client.delete(name, workspace="default")
    out("delete", {"outcome": deleted.outcome.name, "sandbox_id": deleted.sandbox_id})
    client.wait_deleted(name, workspace="default", expected_sandbox_id=deleted.sandbox_id, timeout_seconds=120)
    out("wait_deleted", True)
    try:
        client.get(name, workspace="default")
        out("get_after_delete", "unexpectedly found")
        sys.exit(1)
    except openshell.GatewayError as err:
        out("get_after_delete", err.code().name)
print("SDK-FLOW-OK", openshell.__version__, flush=True)
