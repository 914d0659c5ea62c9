// Parser for the descriptor facts listing written by scripts/proto-dump-sdk.py
// (proto/upstream-sdk-0.1.5.descriptor.txt), plus a normaliser that renders our
// generated @bufbuild/protobuf descriptors in the same vocabulary so the two can
// be compared with deepStrictEqual.

import { readFileSync } from "node:fs";
import type { DescEnum, DescField, DescMessage, DescService } from "@bufbuild/protobuf";

export interface FieldFacts {
  number: number;
  name: string;
  label: string;
  type: string;
  type_name?: string;
  key?: string;
  value?: string;
  json: string;
  oneof?: string;
  proto3_optional?: boolean;
}

export interface MessageFacts {
  fields: FieldFacts[];
  reservedNumbers: number[];
  reservedNames: string[];
}

export interface EnumFacts {
  values: { number: number; name: string }[];
  reservedNumbers: number[];
  reservedNames: string[];
}

export interface RpcFacts {
  name: string;
  input: string;
  output: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

export interface DescriptorFacts {
  files: { name: string; package: string }[];
  services: Map<string, RpcFacts[]>;
  messages: Map<string, MessageFacts>;
  enums: Map<string, EnumFacts>;
}

function keyValues(tokens: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const token of tokens) {
    const eq = token.indexOf("=");
    if (eq > 0) out[token.slice(0, eq)] = token.slice(eq + 1);
  }
  return out;
}

function expandRange(text: string): number[] {
  const [start, end] = text.split("-").map(Number);
  if (start === undefined || end === undefined || Number.isNaN(start) || Number.isNaN(end)) {
    throw new Error(`bad reserved range ${text}`);
  }
  const out: number[] = [];
  for (let n = start; n <= end; n++) out.push(n);
  return out;
}

export function parseDescriptorFacts(text: string): DescriptorFacts {
  const facts: DescriptorFacts = { files: [], services: new Map(), messages: new Map(), enums: new Map() };
  let current: { kind: "message"; facts: MessageFacts } | { kind: "enum"; facts: EnumFacts } | undefined;
  let currentService: RpcFacts[] | undefined;

  text.split("\n").forEach((raw, index) => {
    const line = raw.trimEnd();
    if (line === "" || line.startsWith("#")) return;
    const tokens = line.trim().split(" ");
    const head = tokens[0];
    const fail = (why: string): never => {
      throw new Error(`descriptor facts line ${index + 1}: ${why}: ${line}`);
    };

    if (!line.startsWith(" ")) {
      current = undefined;
      currentService = undefined;
      const name = tokens[1] ?? fail("missing name");
      if (head === "file") {
        facts.files.push({ name, package: keyValues(tokens).package ?? fail("missing package") });
      } else if (head === "service") {
        currentService = [];
        facts.services.set(name, currentService);
      } else if (head === "message") {
        current = { kind: "message", facts: { fields: [], reservedNumbers: [], reservedNames: [] } };
        facts.messages.set(name, current.facts);
      } else if (head === "enum") {
        current = { kind: "enum", facts: { values: [], reservedNumbers: [], reservedNames: [] } };
        facts.enums.set(name, current.facts);
      } else if (head !== "extension") {
        fail("unknown entry");
      }
      return;
    }

    if (head === "rpc") {
      if (!currentService) fail("rpc outside service");
      const kv = keyValues(tokens);
      currentService!.push({
        name: tokens[1] ?? fail("missing rpc name"),
        input: kv.in ?? fail("missing in"),
        output: kv.out ?? fail("missing out"),
        clientStreaming: kv.client_streaming === "true",
        serverStreaming: kv.server_streaming === "true",
      });
      return;
    }
    if (!current) return fail("member outside message/enum");
    if (head === "reserved") {
      const kv = keyValues(tokens);
      if (kv.range !== undefined) current.facts.reservedNumbers.push(...expandRange(kv.range));
      if (kv.name !== undefined) current.facts.reservedNames.push(kv.name);
      return;
    }
    if (current.kind === "enum") {
      if (head !== "value") fail("unexpected enum member");
      current.facts.values.push({ number: Number(tokens[1]), name: tokens[2] ?? fail("missing value name") });
      return;
    }
    if (head === "oneof") return; // membership is recorded on each field
    if (head !== "field") fail("unexpected message member");
    const kv = keyValues(tokens);
    const field: FieldFacts = {
      number: Number(kv.number ?? fail("missing number")),
      name: kv.name ?? fail("missing name"),
      label: kv.label ?? fail("missing label"),
      type: kv.type ?? fail("missing type"),
      json: kv.json ?? fail("missing json"),
    };
    if (kv.type_name !== undefined) field.type_name = kv.type_name;
    if (kv.key !== undefined) field.key = kv.key;
    if (kv.value !== undefined) field.value = kv.value;
    if (kv.oneof !== undefined) field.oneof = kv.oneof;
    if (kv.proto3_optional === "true") field.proto3_optional = true;
    current.facts.fields.push(field);
  });
  return facts;
}

export function loadDescriptorFacts(path: URL | string): DescriptorFacts {
  return parseDescriptorFacts(readFileSync(path, "utf8"));
}

/** Message and enum names reachable from the given RPCs, following field types. */
export function reachableTypes(
  facts: DescriptorFacts,
  service: string,
  rpcNames: readonly string[],
): Set<string> {
  const rpcs = facts.services.get(service);
  if (!rpcs) throw new Error(`service ${service} not in descriptor facts`);
  const roots: string[] = [];
  for (const name of rpcNames) {
    const rpc = rpcs.find((r) => r.name === name);
    if (!rpc) throw new Error(`rpc ${service}.${name} not in descriptor facts`);
    roots.push(rpc.input, rpc.output);
  }
  return reachableFrom(facts, roots);
}

/** The given type names plus every message and enum their fields refer to. */
export function reachableFrom(facts: DescriptorFacts, roots: readonly string[]): Set<string> {
  const todo = [...roots];
  const seen = new Set<string>();
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    if (seen.has(next)) continue;
    seen.add(next);
    for (const field of facts.messages.get(next)?.fields ?? []) {
      if (field.type_name) todo.push(field.type_name);
      const value = field.value?.match(/^(?:message|enum):(.+)$/);
      if (value?.[1]) todo.push(value[1]);
    }
  }
  return seen;
}

// FieldDescriptorProto.Type numbers -> the lower-case names the dump uses.
const PROTO_TYPE_NAMES: Record<number, string> = {
  1: "double",
  2: "float",
  3: "int64",
  4: "uint64",
  5: "int32",
  6: "fixed64",
  7: "fixed32",
  8: "bool",
  9: "string",
  10: "group",
  11: "message",
  12: "bytes",
  13: "uint32",
  14: "enum",
  15: "sfixed32",
  16: "sfixed64",
  17: "sint32",
  18: "sint64",
};

function protoTypeName(type: number): string {
  const name = PROTO_TYPE_NAMES[type];
  if (!name) throw new Error(`unknown field type ${type}`);
  return name;
}

function fieldFacts(message: DescMessage, field: DescField): FieldFacts {
  const out: FieldFacts = {
    number: field.number,
    name: field.name,
    label: "optional",
    type: protoTypeName(field.proto.type),
    json: field.jsonName,
  };
  if (field.fieldKind === "map") {
    out.label = "map";
    out.type = "map";
    out.key = protoTypeName(field.mapKey);
    out.value =
      field.mapKind === "message"
        ? `message:${field.message.typeName}`
        : field.mapKind === "enum"
          ? `enum:${field.enum.typeName}`
          : protoTypeName(field.scalar);
  } else {
    if (field.fieldKind === "list") out.label = "repeated";
    if (field.proto.typeName) out.type_name = field.proto.typeName.replace(/^\./, "");
  }
  if (field.oneof) out.oneof = field.oneof.name;
  if (field.proto.proto3Optional) {
    out.proto3_optional = true;
    out.oneof = message.proto.oneofDecl[field.proto.oneofIndex]?.name ?? "?";
  }
  return out;
}

function reservedNumbers(ranges: readonly { start: number; end: number }[], endInclusive: boolean): number[] {
  return ranges.flatMap((r) => expandRange(`${r.start}-${endInclusive ? r.end : r.end - 1}`));
}

export function messageFacts(message: DescMessage): MessageFacts {
  return {
    fields: message.fields.map((f) => fieldFacts(message, f)),
    reservedNumbers: reservedNumbers(message.proto.reservedRange, false),
    reservedNames: [...message.proto.reservedName],
  };
}

export function enumFacts(desc: DescEnum): EnumFacts {
  return {
    values: desc.values.map((v) => ({ number: v.number, name: v.name })),
    reservedNumbers: reservedNumbers(desc.proto.reservedRange, true),
    reservedNames: [...desc.proto.reservedName],
  };
}

export function rpcFacts(service: DescService): RpcFacts[] {
  return service.methods.map((m) => ({
    name: m.name,
    input: m.input.typeName,
    output: m.output.typeName,
    clientStreaming: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
    serverStreaming: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
  }));
}

/** Order-insensitive view for comparison: fields by number, names sorted. */
export function canonicalMessage(m: MessageFacts): MessageFacts {
  return {
    fields: [...m.fields].sort((a, b) => a.number - b.number),
    reservedNumbers: [...m.reservedNumbers].sort((a, b) => a - b),
    reservedNames: [...m.reservedNames].sort(),
  };
}

export function canonicalEnum(e: EnumFacts): EnumFacts {
  return {
    values: [...e.values].sort((a, b) => a.number - b.number || a.name.localeCompare(b.name)),
    reservedNumbers: [...e.reservedNumbers].sort((a, b) => a - b),
    reservedNames: [...e.reservedNames].sort(),
  };
}
