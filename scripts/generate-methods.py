#!/usr/bin/env python3
"""Generate the AMQP 0-9-1 method layer (Sources/AMQPProtocol/Generated/) from the spec XML.

Usage: scripts/generate-methods.py [SPEC_XML] [OUTPUT_DIR]

SPEC_XML defaults to ../shared/spec/amqp0-9-1.extended.xml (RabbitMQ's extended spec:
confirms, basic.nack, exchange-to-exchange bindings, connection.blocked). The spec is
read where it lives and never copied into the repository; only the generated Swift is
committed. Regenerate after changing this script and commit both together.

Output: one file per AMQP class (each method a struct with its ids, `isSynchronous`,
`hasContent`, the methods that answer it, who must accept it, typed fields and the
spec's rules as doc comments), plus Method.swift with the `AMQP.Method` enum that
dispatches decoding by (class id, method id).
"""
import os
import re
import sys
import textwrap
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_SPEC = os.path.normpath(os.path.join(ROOT, "..", "shared", "spec", "amqp0-9-1.extended.xml"))
DEFAULT_OUT = os.path.join(ROOT, "Sources", "AMQPProtocol", "Generated")

# Wire type -> (Swift type, default value, reader, writer-template)
TYPES = {
    "octet": ("UInt8", "0", "try buffer.readAMQPOctet()", "buffer.writeInteger({v} as UInt8)"),
    "short": ("UInt16", "0", "try buffer.readAMQPShort()", "buffer.writeInteger({v} as UInt16)"),
    "long": ("UInt32", "0", "try buffer.readAMQPLong()", "buffer.writeInteger({v} as UInt32)"),
    "longlong": ("UInt64", "0", "try buffer.readAMQPLongLong()", "buffer.writeInteger({v} as UInt64)"),
    "timestamp": ("UInt64", "0", "try buffer.readAMQPLongLong()", "buffer.writeInteger({v} as UInt64)"),
    "shortstr": ("String", '""', "try buffer.readAMQPShortString()", "try buffer.writeAMQPShortString({v})"),
    "longstr": ("[UInt8]", "[]", "try buffer.readAMQPLongBytes()", "buffer.writeAMQPLongBytes({v})"),
    "table": ("FieldTable", "[:]", "try buffer.readAMQPFieldTable()", "try buffer.writeAMQPFieldTable({v})"),
    "bit": ("Bool", "false", None, None),
}

# Where the XML disagrees with what RabbitMQ and every client implement (RabbitMQ's own
# amqp-rabbitmq-0.9.1.json, pika, rabbitmq-c), the wire behaviour wins:
# - basic.recover is synchronous and answered by recover-ok; the XML drops both.
# - connection.update-secret goes from client to broker and update-secret-ok back; the XML
#   lists the chassis the other way round.
ERRATA = {
    "basic.recover": {"synchronous": True, "responses": ["recover-ok"]},
    "connection.update-secret": {"to_server": True, "to_client": False},
    "connection.update-secret-ok": {"to_server": False, "to_client": True},
}

# Swift keywords that can appear as field names.
KEYWORDS = {"type", "internal", "return", "default", "class", "protocol", "self", "in", "is"}


def camel(name, upper=False):
    parts = re.split(r"[-_ ]", name)
    out = parts[0].lower() + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    if upper:
        out = out[:1].upper() + out[1:]
    return out


def field_ident(name):
    ident = camel(name)
    return f"`{ident}`" if ident in KEYWORDS else ident


def clean(text):
    return " ".join((text or "").split())


def doc_lines(text, indent, width=92):
    text = clean(text)
    if not text:
        return []
    return [f"{indent}/// {line}" for line in textwrap.wrap(text, width - len(indent) - 4)]


def element_docs(element):
    """Plain <doc> text of an element (not grammar, not scenarios)."""
    return [d.text for d in element.findall("doc") if d.get("type") is None]


def rule_docs(element):
    out = []
    for rule in element.findall("rule"):
        texts = [clean(d.text) for d in rule.findall("doc") if d.get("type") is None]
        text = " ".join(t for t in texts if t)
        if not text:
            continue
        failure = rule.get("on-failure")
        prefix = f"Rule {rule.get('name')}" + (f" (on failure: {failure})" if failure else "")
        out.append(f"{prefix}: {text}")
    return out


class Field:
    def __init__(self, element, domains):
        self.name = element.get("name")
        domain = element.get("domain") or element.get("type")
        self.wire = domains.get(domain, domain)
        if self.wire not in TYPES:
            raise SystemExit(f"unknown wire type {self.wire} for field {self.name}")
        self.reserved = element.get("reserved") == "1"
        self.ident = field_ident(self.name)
        self.plain = camel(self.name)
        self.label = element.get("label") or ""
        self.docs = element_docs(element)
        self.rules = rule_docs(element)

    @property
    def swift_type(self):
        return TYPES[self.wire][0]

    @property
    def default(self):
        return TYPES[self.wire][1]


class MethodSpec:
    def __init__(self, cls, element, domains):
        self.cls = cls
        self.name = element.get("name")
        self.index = int(element.get("index"))
        self.synchronous = element.get("synchronous") == "1"
        self.content = element.get("content") == "1"
        self.deprecated = element.get("deprecated") == "1"
        self.label = element.get("label") or ""
        self.docs = element_docs(element)
        self.rules = rule_docs(element)
        self.responses = [r.get("name") for r in element.findall("response")]
        chassis = {c.get("name") for c in element.findall("chassis")}
        self.to_server = "server" in chassis
        self.to_client = "client" in chassis
        self.fields = [Field(f, domains) for f in element.findall("field")]
        self.struct = camel(self.name, upper=True)
        self.case = camel(cls.name) + camel(self.name, upper=True)
        for attribute, value in ERRATA.get(self.full_name, {}).items():
            setattr(self, attribute, value)

    @property
    def full_name(self):
        return f"{self.cls.name}.{self.name}"


class ClassSpec:
    def __init__(self, element, domains):
        self.name = element.get("name")
        self.index = int(element.get("index"))
        self.label = element.get("label") or ""
        self.docs = element_docs(element)
        self.swift = camel(self.name, upper=True)
        self.methods = [MethodSpec(self, m, domains) for m in element.findall("method")]
        self.properties = [Field(f, domains) for f in element.findall("field")]


HEADER = """\
// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.
"""


def gen_method(m):
    ind = "    "
    out = []
    summary = m.label[:1].upper() + m.label[1:] if m.label else m.full_name
    out.append(f"{ind}/// `{m.full_name}`: {summary}.")
    for d in m.docs:
        out.append(f"{ind}///")
        out.extend(doc_lines(d, ind))
    for r in m.rules:
        out.append(f"{ind}///")
        out.extend(doc_lines(r, ind))
    if m.deprecated:
        out.append(f"{ind}///")
        out.append(f"{ind}/// Deprecated by the specification.")
    out.append(f"{ind}public struct {m.struct}: MethodPayload {{")
    i2 = ind * 2
    out.append(f"{i2}public static let classID: UInt16 = {m.cls.index}")
    out.append(f"{i2}public static let methodID: UInt16 = {m.index}")
    out.append(f'{i2}public static let name = "{m.full_name}"')
    out.append(f"{i2}public static let isSynchronous = {'true' if m.synchronous else 'false'}")
    out.append(f"{i2}public static let hasContent = {'true' if m.content else 'false'}")
    responses = ", ".join(f'"{m.cls.name}.{r}"' for r in m.responses)
    out.append(f"{i2}/// Methods that answer this one, by name.")
    out.append(f"{i2}public static let responses: [String] = [{responses}]")
    out.append(f"{i2}/// Whether a server must accept this method (the spec's server chassis).")
    out.append(f"{i2}public static let sentToServer = {'true' if m.to_server else 'false'}")
    out.append(f"{i2}/// Whether a client must accept this method (the spec's client chassis).")
    out.append(f"{i2}public static let sentToClient = {'true' if m.to_client else 'false'}")
    fields = [f for f in m.fields if not f.reserved]
    for f in fields:
        out.append("")
        label = f.label[:1].upper() + f.label[1:] if f.label else f.plain
        out.append(f"{i2}/// {clean(label)}.")
        for d in f.docs:
            out.append(f"{i2}///")
            out.extend(doc_lines(d, i2))
        for r in f.rules:
            out.append(f"{i2}///")
            out.extend(doc_lines(r, i2))
        out.append(f"{i2}public var {f.ident}: {f.swift_type}")
    out.append("")
    params = ", ".join(f"{f.ident}: {f.swift_type} = {f.default}" for f in fields)
    out.append(f"{i2}@inlinable")
    out.append(f"{i2}public init({params}) {{")
    for f in fields:
        out.append(f"{i2}    self.{f.ident} = {f.ident}")
    out.append(f"{i2}}}")
    # decoding
    out.append("")
    out.append(f"{i2}/// Reads the arguments (everything after the class and method ids).")
    out.append(f"{i2}@inlinable")
    out.append(f"{i2}public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {{")
    i3 = ind * 3
    for group in wire_groups(m.fields):
        if group[0].wire != "bit":
            f = group[0]
            reader = TYPES[f.wire][2]
            out.append(f"{i3}{'_' if f.reserved else 'self.' + f.ident} = {reader}")
            continue
        used = [(i, f) for i, f in enumerate(group) if not f.reserved]
        if not used:
            out.append(f"{i3}_ = try buffer.readAMQPOctet()")
            continue
        out.append(f"{i3}let bits = try buffer.readAMQPOctet()")
        for i, f in used:
            out.append(f"{i3}self.{f.ident} = bits & {1 << i} != 0")
    if not m.fields:
        out.append(f"{i3}_ = buffer")
    out.append(f"{i2}}}")
    # encoding
    out.append("")
    out.append(f"{i2}/// Writes the arguments (everything after the class and method ids).")
    out.append(f"{i2}@inlinable")
    out.append(f"{i2}public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {{")
    pending_bits = []

    def flush_bits():
        if not pending_bits:
            return
        used = [(idx, bf) for idx, bf in enumerate(pending_bits) if not bf.reserved]
        if not used:
            out.append(f"{i3}buffer.writeInteger(0 as UInt8)")
        elif len(used) == 1 and used[0][0] == 0:
            out.append(f"{i3}buffer.writeInteger(self.{used[0][1].ident} ? 1 : 0 as UInt8)")
        else:
            out.append(f"{i3}var bits: UInt8 = 0")
            for idx, bf in used:
                out.append(f"{i3}if self.{bf.ident} {{ bits |= {1 << idx} }}")
            out.append(f"{i3}buffer.writeInteger(bits)")
        pending_bits.clear()

    for f in m.fields:
        if f.wire == "bit":
            if len(pending_bits) == 8:
                flush_bits()
            pending_bits.append(f)
            continue
        flush_bits()
        writer = TYPES[f.wire][3]
        if f.reserved:
            out.append(f"{i3}{writer.format(v=f.default)}")
        else:
            out.append(f"{i3}{writer.format(v='self.' + f.ident)}")
    flush_bits()
    if not m.fields:
        out.append(f"{i3}_ = buffer")
    out.append(f"{i2}}}")
    out.append(f"{ind}}}")
    return out


def wire_groups(fields):
    """Splits fields into runs: up to eight consecutive bits share one octet."""
    groups = []
    for f in fields:
        if f.wire == "bit" and groups and groups[-1][0].wire == "bit" and len(groups[-1]) < 8:
            groups[-1].append(f)
        else:
            groups.append([f])
    return groups


def gen_class(c):
    out = [HEADER, "import NIOCore", ""]
    out.append("extension AMQP {")
    summary = c.label[:1].upper() + c.label[1:] if c.label else c.name
    out.append(f"    /// The `{c.name}` class (id {c.index}): {summary}.")
    out.append(f"    public enum {c.swift} {{")
    out.append(f"        public static let classID: UInt16 = {c.index}")
    out.append("    }")
    out.append("}")
    out.append("")
    out.append(f"extension AMQP.{c.swift} {{")
    for i, m in enumerate(c.methods):
        if i:
            out.append("")
        out.extend(gen_method(m))
    out.append("}")
    out.append("")
    return "\n".join(out)


def gen_method_enum(classes):
    methods = [m for c in classes for m in c.methods]
    out = [HEADER, "import NIOCore", ""]
    out.append("extension AMQP {")
    out.append("    /// Every method of AMQP 0-9-1 with RabbitMQ's extensions, as one value.")
    out.append("    public enum Method: Sendable, Hashable {")
    for m in methods:
        out.append(f"        case {m.case}({m.cls.swift}.{m.struct})")
    out.append("    }")
    out.append("}")
    out.append("")
    out.append("extension AMQP.Method {")

    def switch_prop(name, swift_type, expr):
        out.append(f"    public var {name}: {swift_type} {{")
        out.append("        switch self {")
        for m in methods:
            out.append(f"        case .{m.case}: return AMQP.{m.cls.swift}.{m.struct}.{expr}")
        out.append("        }")
        out.append("    }")
        out.append("")

    switch_prop("classID", "UInt16", "classID")
    switch_prop("methodID", "UInt16", "methodID")
    out[-1:] = [""]
    out.append("    /// The method's name as the spec writes it, such as `basic.publish`.")
    switch_prop("name", "String", "name")
    out.append("    /// Whether the method expects a reply (the spec's `synchronous`).")
    switch_prop("isSynchronous", "Bool", "isSynchronous")
    out.append("    /// Whether a content header and body frames follow the method.")
    switch_prop("hasContent", "Bool", "hasContent")
    out.append("    /// Whether a server must accept the method.")
    switch_prop("sentToServer", "Bool", "sentToServer")
    out.append("    /// Whether a client must accept the method.")
    switch_prop("sentToClient", "Bool", "sentToClient")

    out.append("    /// Decodes a method frame's payload: class id, method id and arguments.")
    out.append("    /// Unknown ids throw `.unknownMethod`, short payloads `.truncated`.")
    out.append("    public init(from buffer: inout ByteBuffer) throws(ProtocolError) {")
    out.append("        let classID = try buffer.readAMQPShort()")
    out.append("        let methodID = try buffer.readAMQPShort()")
    out.append("        switch (classID, methodID) {")
    for m in methods:
        out.append(f"        case ({m.cls.index}, {m.index}): self = .{m.case}(try .init(arguments: &buffer))")
    out.append("        default: throw ProtocolError(.unknownMethod, \"unknown method \\(classID).\\(methodID)\")")
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// Encodes class id, method id and arguments: a method frame's payload.")
    out.append("    public func encode(into buffer: inout ByteBuffer) throws(ProtocolError) {")
    out.append("        buffer.writeInteger(self.classID)")
    out.append("        buffer.writeInteger(self.methodID)")
    out.append("        switch self {")
    for m in methods:
        out.append(f"        case .{m.case}(let method): try method.encodeArguments(into: &buffer)")
    out.append("        }")
    out.append("    }")
    out.append("}")
    out.append("")
    # lift each payload into the enum
    for m in methods:
        out.append(f"extension AMQP.{m.cls.swift}.{m.struct} {{")
        out.append("    @inlinable")
        out.append(f"    public var asMethod: AMQP.Method {{ .{m.case}(self) }}")
        out.append("}")
        out.append("")
    return "\n".join(out)


def gen_properties(classes):
    basic = next(c for c in classes if c.name == "basic")
    props = basic.properties
    assert len(props) == 14, f"basic has {len(props)} properties, expected 14"
    out = [HEADER, "import NIOCore", ""]
    out.append("/// The 14 properties of a `basic` content header, each optional; a set flag bit")
    out.append("/// in the header's property-flags word says the value is present.")
    out.append("public struct BasicProperties: Sendable, Hashable {")
    for p in props:
        label = p.label[:1].upper() + p.label[1:]
        out.append(f"    /// {label}.")
        out.append(f"    public var {p.ident}: {p.swift_type}?")
    out.append("")
    params = ", ".join(f"{p.ident}: {p.swift_type}? = nil" for p in props)
    out.append("    @inlinable")
    out.append(f"    public init({params}) {{")
    for p in props:
        out.append(f"        self.{p.ident} = {p.ident}")
    out.append("    }")
    out.append("")
    out.append("    /// Whether no property is set (the common case on the hot path).")
    cond = " && ".join(f"self.{p.ident} == nil" for p in props)
    out.append(f"    public var isEmpty: Bool {{ {cond} }}")
    out.append("")
    out.append("    /// Reads the property-flags word(s) and the values they announce.")
    out.append("    @inlinable")
    out.append("    public init(from buffer: inout ByteBuffer) throws(ProtocolError) {")
    out.append("        let flags = try buffer.readAMQPShort()")
    out.append("        // Bit 0 announces another flags word; 0-9-1 defines only 14 properties, so any")
    out.append("        // further words can carry no property we know and must be all zero.")
    out.append("        var more = flags & 1 != 0")
    out.append("        while more {")
    out.append("            let next = try buffer.readAMQPShort()")
    out.append("            guard next & 0xFFFE == 0 else {")
    out.append('                throw ProtocolError(.malformedFrame, "content header announces unknown properties")')
    out.append("            }")
    out.append("            more = next & 1 != 0")
    out.append("        }")
    out.append("        self.init()")
    for i, p in enumerate(props):
        bit = 15 - i
        out.append(f"        if flags & {1 << bit} != 0 {{ self.{p.ident} = {TYPES[p.wire][2]} }}")
    out.append("    }")
    out.append("")
    out.append("    /// Writes the property-flags word and the values that are set.")
    out.append("    @inlinable")
    out.append("    public func encode(into buffer: inout ByteBuffer) throws(ProtocolError) {")
    out.append("        var flags: UInt16 = 0")
    for i, p in enumerate(props):
        out.append(f"        if self.{p.ident} != nil {{ flags |= {1 << (15 - i)} }}")
    out.append("        buffer.writeInteger(flags)")
    for p in props:
        writer = TYPES[p.wire][3].format(v="value")
        out.append(f"        if let value = self.{p.ident} {{ {writer} }}")
    out.append("    }")
    out.append("}")
    out.append("")
    return "\n".join(out)


def gen_constants(root):
    out = [HEADER]
    out.append("/// Reply codes and frame constants of the specification.")
    out.append("public enum ReplyCode {")
    frames = []
    for c in root.findall("constant"):
        name = c.get("name")
        value = int(c.get("value"))
        if name.startswith("frame-") and name != "frame-error":
            frames.append((name, value))
            continue
        kind = c.get("class")
        comment = f" ({kind})" if kind else ""
        out.append(f"    /// `{name}`{comment}.")
        out.append(f"    public static let {camel(name)}: UInt16 = {value}")
    out.append("}")
    out.append("")
    out.append("/// Frame-level constants of the specification.")
    out.append("public enum FrameConstants {")
    for name, value in frames:
        out.append(f"    public static let {camel(name[len('frame-'):]) if name != 'frame-end' else 'end'}: Int = {value}")
    out.append("}")
    out.append("")
    return "\n".join(out)


def main():
    spec = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SPEC
    out_dir = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUT
    root = ET.parse(spec).getroot()
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}
    classes = [ClassSpec(c, domains) for c in root.findall("class")]
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.endswith(".swift"):
            os.remove(os.path.join(out_dir, name))
    files = {f"{c.swift}.swift": gen_class(c) for c in classes}
    files["Method.swift"] = gen_method_enum(classes)
    files["BasicProperties.swift"] = gen_properties(classes)
    files["Constants.swift"] = gen_constants(root)
    for name, text in files.items():
        with open(os.path.join(out_dir, name), "w") as fh:
            fh.write(text)
    count = sum(len(c.methods) for c in classes)
    print(f"generated {count} methods in {len(classes)} classes into {out_dir}")


if __name__ == "__main__":
    main()
