#!/usr/bin/env python3
"""Generate crates/kms-model/src/generated.rs from botocore's AWS KMS service model.

Usage (from the repository root):

    python3 scripts/gen-kms-model.py            # write the file
    python3 scripts/gen-kms-model.py --check    # exit 1 if the checked-in file is stale

The model is read from the installed botocore package
(<botocore>/data/kms/2014-11-01/service-2.json.gz). Only what input validation
needs is emitted: the operations (name, input shape, output member names) and
every shape reachable from an operation's input, with its constraints. The
output is static data (no parsing at run time) and does not depend on the
order in which Python iterates anything but the model itself, so regenerating
from the same botocore version gives the same bytes.
"""

import argparse
import gzip
import json
import os
import re
import sys

import botocore

MODEL_REL = os.path.join("data", "kms", "2014-11-01", "service-2.json.gz")
OUT_REL = os.path.join("crates", "kms-model", "src", "generated.rs")

KINDS = {
    "structure": "Structure",
    "string": "String",
    "blob": "Blob",
    "integer": "Integer",
    "long": "Long",
    "boolean": "Boolean",
    "timestamp": "Timestamp",
    "list": "List",
    "map": "Map",
}


def fail(msg):
    sys.stderr.write("gen-kms-model: " + msg + "\n")
    sys.exit(2)


def rust_str(s):
    """A Rust string literal for s (plain, escaped; never a raw string)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        else:
            out.append("\\u{%x}" % code)
    out.append('"')
    return "".join(out)


def java_pattern_to_regex_lite(pattern):
    """Translate a model (Java) regular expression for regex-lite.

    The model's patterns are Java regexes applied with Matcher.matches(), i.e.
    the whole value must match. regex-lite does not know Java's \\uXXXX escape
    and rejects escaping '/', so those two are rewritten; the result is
    anchored with \\A(?:...)\\z. \\w, \\d and \\s are ASCII-only in both Java
    (without UNICODE_CHARACTER_CLASS) and regex-lite.
    """
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", pattern[i + 2 : i + 6] or ""):
                out.append("\\x{" + pattern[i + 2 : i + 6] + "}")
                i += 6
                continue
            if nxt == "/":
                out.append("/")
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "\\A(?:" + "".join(out) + ")\\z"


def int_or_none(shape, key, name):
    if key not in shape:
        return None
    v = shape[key]
    if isinstance(v, float):
        if not v.is_integer():
            fail("%s.%s is not an integer: %r" % (name, key, v))
        v = int(v)
    if not isinstance(v, int):
        fail("%s.%s is not a number: %r" % (name, key, v))
    return v


def opt(v):
    return "None" if v is None else "Some(%s)" % v


def generate(model, botocore_version):
    shapes = model["shapes"]
    operations = model["operations"]

    # Shapes reachable from the operations' inputs.
    reach = set()
    stack = []
    for op_name in sorted(operations):
        op = operations[op_name]
        if "input" not in op:
            fail("operation %s has no input shape" % op_name)
        stack.append(op["input"]["shape"])
    while stack:
        name = stack.pop()
        if name in reach:
            continue
        if name not in shapes:
            fail("unknown shape " + name)
        reach.add(name)
        s = shapes[name]
        for m in s.get("members", {}).values():
            stack.append(m["shape"])
        for k in ("member", "key", "value"):
            if k in s:
                stack.append(s[k]["shape"])

    names = sorted(reach)
    index = {n: i for i, n in enumerate(names)}

    # The validator recurses along the model; refuse a recursive input model
    # rather than rely on the run-time depth guard alone.
    def children(n):
        s = shapes[n]
        out = [m["shape"] for m in s.get("members", {}).values()]
        out += [s[k]["shape"] for k in ("member", "key", "value") if k in s]
        return out

    state = {}

    def visit(n, trail):
        if state.get(n) == "done":
            return
        if state.get(n) == "open":
            fail("recursive input shapes: " + " -> ".join(trail + [n]))
        state[n] = "open"
        for c in children(n):
            visit(c, trail + [n])
        state[n] = "done"

    for n in names:
        visit(n, [])

    patterns = []  # (model pattern, regex-lite pattern)
    pattern_index = {}

    lines = []
    w = lines.append
    w("// @generated by scripts/gen-kms-model.py -- do not edit by hand.")
    w("//")
    w("// Source: botocore %s, %s" % (botocore_version, MODEL_REL.replace(os.sep, "/")))
    w("// (KMS apiVersion %s, protocol %s %s)." % (
        model["metadata"].get("apiVersion"),
        model["metadata"].get("protocol"),
        model["metadata"].get("jsonVersion"),
    ))
    w("// Regenerate: python3 scripts/gen-kms-model.py   (check: --check)")
    w("")
    w("use crate::model::{Member, Operation, Pattern, Shape, ShapeKind};")
    w("")
    w("/// botocore version the tables were generated from.")
    w("pub const BOTOCORE_VERSION: &str = %s;" % rust_str(botocore_version))
    w("")
    w("/// KMS API version of the model.")
    w("pub const API_VERSION: &str = %s;" % rust_str(model["metadata"].get("apiVersion", "")))
    w("")

    shape_lines = []
    for n in names:
        s = shapes[n]
        kind = KINDS.get(s["type"])
        if kind is None:
            fail("shape %s has unsupported type %s" % (n, s["type"]))
        members = []
        required = set(s.get("required", []))
        for mname, m in s.get("members", {}).items():
            target = m["shape"]
            wire = m.get("locationName", mname)
            sensitive = bool(m.get("sensitive")) or bool(shapes[target].get("sensitive"))
            members.append(
                "Member { name: %s, target: %d, required: %s, sensitive: %s }"
                % (rust_str(wire), index[target], "true" if mname in required else "false",
                   "true" if sensitive else "false")
            )
        unknown_required = required - set(s.get("members", {}))
        if unknown_required:
            fail("%s requires unknown members %s" % (n, sorted(unknown_required)))
        pattern = "None"
        if "pattern" in s:
            p = s["pattern"]
            if p not in pattern_index:
                pattern_index[p] = len(patterns)
                patterns.append((p, java_pattern_to_regex_lite(p)))
            pattern = "Some(&PATTERNS[%d])" % pattern_index[p]
        enum = s.get("enum", [])
        lo = int_or_none(s, "min", n)
        hi = int_or_none(s, "max", n)
        sub = {k: (index[s[k]["shape"]] if k in s else None) for k in ("member", "key", "value")}
        body = []
        body.append("        name: %s," % rust_str(n))
        body.append("        kind: ShapeKind::%s," % kind)
        body.append("        sensitive: %s," % ("true" if s.get("sensitive") else "false"))
        if members:
            body.append("        members: &[")
            for m in members:
                body.append("            %s," % m)
            body.append("        ],")
        else:
            body.append("        members: &[],")
        if enum:
            body.append("        enum_values: &[%s]," % ", ".join(rust_str(e) for e in enum))
        else:
            body.append("        enum_values: &[],")
        body.append("        min: %s," % opt(lo))
        body.append("        max: %s," % opt(hi))
        body.append("        pattern: %s," % pattern)
        body.append("        member: %s," % opt(sub["member"]))
        body.append("        key: %s," % opt(sub["key"]))
        body.append("        value: %s," % opt(sub["value"]))
        shape_lines.append("    // %d\n    Shape {\n%s\n    }," % (index[n], "\n".join(body)))

    w("/// The model's `pattern` constraints: the Java text (quoted in messages) and")
    w("/// its regex-lite translation (anchored: the whole value must match).")
    w("pub static PATTERNS: [Pattern; %d] = [" % len(patterns))
    for i, (p, r) in enumerate(patterns):
        w("    Pattern { id: %d, model: %s, regex: %s }," % (i, rust_str(p), rust_str(r)))
    w("];")
    w("")
    w("/// Every shape reachable from an operation's input, sorted by name.")
    w("pub static SHAPES: &[Shape] = &[")
    lines.extend(shape_lines)
    w("];")
    w("")
    w("/// Every operation, sorted by name.")
    w("pub static OPERATIONS: &[Operation] = &[")
    for op_name in sorted(operations):
        op = operations[op_name]
        out_members = []
        if "output" in op:
            out_members = list(shapes[op["output"]["shape"]].get("members", {}).keys())
        w("    Operation {")
        w("        name: %s," % rust_str(op_name))
        w("        input: %d," % index[op["input"]["shape"]])
        if out_members:
            w("        output_members: &[%s]," % ", ".join(rust_str(m) for m in out_members))
        else:
            w("        output_members: &[],")
        w("    },")
    w("];")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the checked-in file differs")
    parser.add_argument("--out", default=None, help="output path (default: %s)" % OUT_REL)
    args = parser.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(root, OUT_REL)
    model_path = os.path.join(os.path.dirname(botocore.__file__), MODEL_REL)
    with gzip.open(model_path, "rt", encoding="utf-8") as f:
        model = json.load(f)
    text = generate(model, botocore.__version__)

    if args.check:
        try:
            with open(out, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            sys.stderr.write("%s is stale; run python3 scripts/gen-kms-model.py\n" % out)
            return 1
        return 0
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
