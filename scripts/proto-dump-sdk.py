#!/usr/bin/env python3
"""Print a facts listing of the protobuf descriptors shipped in the openshell Python SDK.

Run it with the interpreter of a virtualenv that has the SDK installed, e.g.

    /var/cache/openshell-testbed/sdk-venv/bin/python scripts/proto-dump-sdk.py \
        > proto/upstream-sdk-0.1.5.descriptor.txt

The SDK's generated ``openshell/_proto/*_pb2.py`` modules register serialized
FileDescriptorProtos in the default descriptor pool; this script reads those
FileDescriptorProtos back and prints one line per service, method, message,
field, oneof, enum and enum value. Every openshell.* file the SDK ships is
listed in full (not just the parts our gateway implements), in declaration
order, so the output is deterministic for a given SDK version. It also lists
google/rpc/error_details.proto, whose messages the SDK's error mapping decodes.

Line grammar (tokens separated by single spaces, values never contain spaces):

    file <path> package=<pkg> syntax=<proto2|proto3|editions> deps=<a,b,...>
    service <fq.Service>
      rpc <Method> in=<fq.Req> out=<fq.Resp> client_streaming=<bool> server_streaming=<bool>
          [auth=<key>:<value>;...]   (upstream's openshell.options.v1.authorization method option)
    message <fq.Message>
      field number=<n> name=<n> label=<optional|repeated|required|map> type=<t> [type_name=<fq>]
            [key=<t>] [value=<t>|value=message:<fq>|value=enum:<fq>] json=<jsonName>
            [oneof=<name>] [proto3_optional=true] [deprecated=true] [secret=true]
            (secret=true: upstream's openshell.options.v1.secret field option)
      oneof <name> [synthetic=true]
      reserved range=<start>-<end inclusive> | reserved name=<n>
    enum <fq.Enum>
      value <number> <NAME>
    extension <fq.name> extendee=<fq> number=<n> label=<l> type=<t>

Nested messages and enums are printed as top-level entries with their full
dotted name; map entry messages are folded into their map field.
"""

from __future__ import annotations

import importlib
import sys

from google.protobuf import descriptor_pb2, descriptor_pool
import google.protobuf

SDK_MODULES = (
    "openshell._proto.options_pb2",
    "openshell._proto.datamodel_pb2",
    "openshell._proto.sandbox_pb2",
    "openshell._proto.openshell_pb2",
    # openshell/errors.py decodes BadRequest, ErrorInfo and RetryInfo from the
    # grpc-status-details-bin trailer; their wire format comes from this file
    # (package googleapis-common-protos, an SDK dependency).
    "google.rpc.error_details_pb2",
)

POOL = descriptor_pool.Default()
F = descriptor_pb2.FieldDescriptorProto
TYPE_NAMES = {
    v: k[len("TYPE_") :].lower() for k, v in F.Type.items()
}
LABEL_NAMES = {
    F.LABEL_OPTIONAL: "optional",
    F.LABEL_REPEATED: "repeated",
    F.LABEL_REQUIRED: "required",
}


def fq(name: str) -> str:
    return name[1:] if name.startswith(".") else name


def type_of(field: descriptor_pb2.FieldDescriptorProto) -> str:
    return TYPE_NAMES[field.type]


def field_value_text(field: descriptor_pb2.FieldDescriptorProto) -> str:
    t = type_of(field)
    if t in ("message", "enum", "group"):
        return f"{t}:{fq(field.type_name)}"
    return t


def collect_map_entries(
    prefix: str, msg: descriptor_pb2.DescriptorProto, out: dict[str, descriptor_pb2.DescriptorProto]
) -> None:
    for nested in msg.nested_type:
        name = f"{prefix}.{nested.name}"
        if nested.options.map_entry:
            out[name] = nested
        collect_map_entries(name, nested, out)


def dump_message(
    prefix: str,
    msg: descriptor_pb2.DescriptorProto,
    maps: dict[str, descriptor_pb2.DescriptorProto],
    lines: list[str],
) -> None:
    name = f"{prefix}.{msg.name}"
    if msg.options.map_entry:
        return
    lines.append(f"message {name}")
    for field in msg.field:
        tokens = [f"field number={field.number}", f"name={field.name}"]
        entry = maps.get(fq(field.type_name)) if field.type == F.TYPE_MESSAGE else None
        if entry is not None and field.label == F.LABEL_REPEATED:
            key = next(f for f in entry.field if f.number == 1)
            val = next(f for f in entry.field if f.number == 2)
            tokens += ["label=map", "type=map", f"key={type_of(key)}", f"value={field_value_text(val)}"]
        else:
            tokens += [f"label={LABEL_NAMES[field.label]}", f"type={type_of(field)}"]
            if field.type_name:
                tokens.append(f"type_name={fq(field.type_name)}")
        tokens.append(f"json={json_name(POOL, name, field.name)}")
        if field.HasField("oneof_index"):
            tokens.append(f"oneof={msg.oneof_decl[field.oneof_index].name}")
        if field.proto3_optional:
            tokens.append("proto3_optional=true")
        if field.options.deprecated:
            tokens.append("deprecated=true")
        if field_is_secret(POOL, name, field.name):
            tokens.append("secret=true")
        if field.HasField("default_value"):
            tokens.append(f"default={field.default_value}")
        lines.append("  " + " ".join(tokens))
    for index, oneof in enumerate(msg.oneof_decl):
        members = [f for f in msg.field if f.HasField("oneof_index") and f.oneof_index == index]
        synthetic = len(members) == 1 and members[0].proto3_optional
        lines.append(f"  oneof {oneof.name}" + (" synthetic=true" if synthetic else ""))
    for rng in msg.reserved_range:
        lines.append(f"  reserved range={rng.start}-{rng.end - 1}")
    for rname in msg.reserved_name:
        lines.append(f"  reserved name={rname}")
    for nested in msg.nested_type:
        dump_message(name, nested, maps, lines)
    for enum in msg.enum_type:
        dump_enum(name, enum, lines)


def dump_enum(prefix: str, enum: descriptor_pb2.EnumDescriptorProto, lines: list[str]) -> None:
    lines.append(f"enum {prefix}.{enum.name}")
    for value in enum.value:
        lines.append(f"  value {value.number} {value.name}")
    for rng in enum.reserved_range:
        lines.append(f"  reserved range={rng.start}-{rng.end}")
    for rname in enum.reserved_name:
        lines.append(f"  reserved name={rname}")


def method_auth(pool: descriptor_pool.DescriptorPool, service: str, method: str) -> str | None:
    """Render upstream's (openshell.options.v1.authorization) method option, if set."""
    options = pool.FindMethodByName(f"{service}.{method}").GetOptions()
    for fd, value in options.ListFields():
        if fd.full_name == "openshell.options.v1.authorization":
            return ";".join(f"{f.name}:{v}" for f, v in value.ListFields())
    return None


def field_is_secret(pool: descriptor_pool.DescriptorPool, message: str, field: str) -> bool:
    """True when the field carries upstream's (openshell.options.v1.secret) = true option."""
    options = pool.FindMessageTypeByName(message).fields_by_name[field].GetOptions()
    return any(
        fd.full_name == "openshell.options.v1.secret" and value for fd, value in options.ListFields()
    )


def json_name(pool: descriptor_pool.DescriptorPool, message: str, field: str) -> str:
    # protoc drops json_name from Python gencode; the runtime computes protobuf's default.
    return pool.FindMessageTypeByName(message).fields_by_name[field].json_name


def main() -> int:
    modules = [importlib.import_module(name) for name in SDK_MODULES]
    pool = POOL
    files = []
    for module in modules:
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(module.DESCRIPTOR.serialized_pb)
        files.append(fdp)

    from importlib.metadata import PackageNotFoundError, version

    def dist_version(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:  # pragma: no cover - informational only
            return "unknown"

    sdk_version = dist_version("openshell")

    lines = [
        "# Facts listing of the protobuf descriptors in the PyPI package openshell "
        f"{sdk_version} (openshell/_proto/*_pb2.py).",
        "# Generated by scripts/proto-dump-sdk.py; do not edit by hand. "
        f"python={sys.version_info.major}.{sys.version_info.minor} protobuf={google.protobuf.__version__} "
        f"googleapis-common-protos={dist_version('googleapis-common-protos')}",
    ]
    for fdp in files:
        maps: dict[str, descriptor_pb2.DescriptorProto] = {}
        for msg in fdp.message_type:
            collect_map_entries(f"{fdp.package}.{msg.name}", msg, maps)
        lines.append("")
        lines.append(
            f"file {fdp.name} package={fdp.package} syntax={fdp.syntax or 'proto2'} "
            f"deps={','.join(fdp.dependency)}"
        )
        for svc in fdp.service:
            sname = f"{fdp.package}.{svc.name}"
            lines.append(f"service {sname}")
            for m in svc.method:
                tokens = [
                    f"  rpc {m.name}",
                    f"in={fq(m.input_type)}",
                    f"out={fq(m.output_type)}",
                    f"client_streaming={'true' if m.client_streaming else 'false'}",
                    f"server_streaming={'true' if m.server_streaming else 'false'}",
                ]
                auth = method_auth(pool, sname, m.name)
                if auth:
                    tokens.append(f"auth={auth}")
                lines.append(" ".join(tokens))
        for msg in fdp.message_type:
            dump_message(fdp.package, msg, maps, lines)
        for enum in fdp.enum_type:
            dump_enum(fdp.package, enum, lines)
        for ext in fdp.extension:
            lines.append(
                f"extension {fdp.package}.{ext.name} extendee={fq(ext.extendee)} number={ext.number} "
                f"label={LABEL_NAMES[ext.label]} type={field_value_text(ext)}"
            )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
