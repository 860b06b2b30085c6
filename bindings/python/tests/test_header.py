"""The ctypes declarations of wsembed/_ffi.py against include/wsembed.h,
the C header cbindgen generates from the Rust sources: every WS_* constant
with the header's value, every function whose argtypes/restype _ffi sets
with the header's signature, the struct and callback types with the
header's layout, and every status code of the header declared in Python.

The parser reads cbindgen's output, not any C: comments, #define of
numbers, enums, typedefs (aliases, structs, function pointers) and
function declarations, one per statement.
"""

import ctypes
import os
import re

import pytest

from servers import REPO
from wsembed import _ffi

HEADER = os.path.join(REPO, "include", "wsembed.h")

# ----- parsing the header -------------------------------------------------


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _int_literal(text):
    """The value of a C integer constant expression as cbindgen writes one
    (``-3``, ``0x10``, ``4u``, ``(int)-1``, ``((uint32_t)1)``), else None."""
    text = text.strip()
    while True:
        inner = re.fullmatch(r"\((.*)\)", text, flags=re.S)
        if inner and _balanced(inner.group(1)):
            text = inner.group(1).strip()
            continue
        cast = re.fullmatch(r"\(\s*[A-Za-z_][\w\s]*\)\s*(.+)", text, flags=re.S)
        if cast:
            text = cast.group(1).strip()
            continue
        break
    number = re.fullmatch(r"([+-]?)\s*(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*", text)
    if not number:
        return None
    digits = number.group(2)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if number.group(1) == "-" else value


def _balanced(text):
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _split_top(text, sep):
    """``text`` split at ``sep`` outside (), {} and []."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


class CType:
    """A C type as written: its base name (``const``/``struct``/``enum``
    dropped, typedefs not resolved) and its number of ``*``."""

    def __init__(self, base, pointers, text):
        self.base = base
        self.pointers = pointers
        self.text = text

    @classmethod
    def parse(cls, text):
        text = " ".join(text.replace("*", " * ").split())
        words = [w for w in text.split() if w not in ("const", "volatile", "struct", "enum")]
        pointers = words.count("*")
        base = " ".join(w for w in words if w != "*")
        return cls(base, pointers, text.replace(" *", "*").replace("* ", "*"))

    def __repr__(self):
        return self.text


class FunctionType:
    """A function's or function pointer's signature."""

    def __init__(self, restype, params):
        self.restype = restype
        self.params = params  # [(CType or FunctionType, name)]


def _parse_declarator(text):
    """``(type, name)`` for a parameter or field declaration; the type is
    a FunctionType for a function pointer such as ``void (*cb)(int)``."""
    text = text.strip()
    fp = re.fullmatch(r"(.+?)\(\s*\*\s*(\w*)\s*\)\s*\((.*)\)", text, flags=re.S)
    if fp:
        return _function_type(fp.group(1), fp.group(3)), fp.group(2)
    named = re.fullmatch(r"(.*?[\w*\s])(\b[A-Za-z_]\w*)", text, flags=re.S)
    if named:
        type_text, name = named.group(1), named.group(2)
        # `int` alone, `const char *` alone: a type without a name.
        if type_text.strip() and type_text.strip() not in ("const", "struct", "enum", "unsigned"):
            return CType.parse(type_text), name
    return CType.parse(text), ""


def _function_type(restype, params):
    params = params.strip()
    if params in ("", "void"):
        parsed = []
    else:
        parsed = [_parse_declarator(p) for p in _split_top(params, ",")]
    return FunctionType(CType.parse(restype), parsed)


class Header:
    """What include/wsembed.h declares."""

    def __init__(self, text):
        self.constants = {}  # name -> int, or None when not a number
        self.aliases = {}  # typedef name -> CType
        self.structs = {}  # name -> [(CType or FunctionType, field name)]; None if opaque
        self.function_pointers = {}  # typedef name -> FunctionType
        self.functions = {}  # name -> FunctionType
        self._parse(_strip_comments(text))

    def _parse(self, text):
        body = []
        skipping = 0
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                directive = stripped[1:].strip()
                if skipping:
                    if directive.startswith("if"):
                        skipping += 1
                    elif directive.startswith("endif"):
                        skipping -= 1
                elif re.match(r"ifdef\s+__cplusplus\b", directive):
                    # extern "C" { and its closing brace.
                    skipping = 1
                else:
                    define = re.match(r"define\s+([A-Za-z_]\w*)\s+(.+)", directive)
                    if define:
                        self.constants[define.group(1)] = _int_literal(define.group(2))
                continue
            if not skipping:
                body.append(line)
        for statement in _split_top(" ".join(body), ";"):
            statement = " ".join(statement.split())
            if statement:
                self._statement(statement)

    def _statement(self, statement):
        enum = re.search(r"\benum\b[^{]*\{(.*)\}", statement)
        if enum:
            self._enum(enum.group(1))
        if statement.startswith("typedef "):
            self._typedef(statement[len("typedef ") :])
            return
        static = re.fullmatch(r"static\s+const\s+.*?\b([A-Za-z_]\w*)\s*=\s*(.+)", statement)
        if static:
            self.constants[static.group(1)] = _int_literal(static.group(2))
            return
        function = re.fullmatch(r"(.+?)\b([A-Za-z_]\w*)\s*\((.*)\)", statement)
        if function and not enum and "{" not in statement:
            self.functions[function.group(2)] = _function_type(
                function.group(1), function.group(3)
            )

    def _enum(self, body):
        value = 0
        for entry in _split_top(body, ","):
            entry = entry.strip()
            if not entry:
                continue
            name, _, expr = entry.partition("=")
            name = name.strip()
            if expr.strip():
                parsed = _int_literal(expr)
                if parsed is None:
                    parsed = self.constants.get(expr.strip())
                value = parsed
            self.constants[name] = value
            value = None if value is None else value + 1

    def _typedef(self, rest):
        struct = re.fullmatch(r"(?:struct|union)\s*(\w*)\s*\{(.*)\}\s*(\w+)", rest)
        if struct:
            fields = [
                _parse_declarator(field)
                for field in _split_top(struct.group(2), ";")
                if field.strip()
            ]
            self.structs[struct.group(3)] = fields
            if struct.group(1):
                self.structs[struct.group(1)] = fields
            return
        opaque = re.fullmatch(r"(?:struct|union)\s+(\w+)\s+(\w+)", rest)
        if opaque:
            for name in opaque.groups():
                self.structs.setdefault(name, None)
            return
        if re.match(r"enum\b", rest):
            name = re.search(r"(\w+)$", rest).group(1)
            self.aliases[name] = CType("int", 0, "int")
            return
        declared, name = _parse_declarator(rest)
        if isinstance(declared, FunctionType):
            self.function_pointers[name] = declared
        else:
            self.aliases[name] = declared


@pytest.fixture(scope="module")
def header():
    assert os.path.isfile(HEADER), "the C header is not at {}".format(HEADER)
    with open(HEADER, encoding="utf-8") as f:
        parsed = Header(f.read())
    # A parser that finds nothing would pass every check below.
    assert "ws_open" in parsed.functions, "parsing {} found no ws_open".format(HEADER)
    assert parsed.constants.get("WS_OK") == 0, "parsing {} found no WS_OK 0".format(HEADER)
    return parsed


# ----- C types as ctypes --------------------------------------------------

_SCALARS = {
    "bool": ctypes.c_bool,
    "_Bool": ctypes.c_bool,
    "char": ctypes.c_char,
    "signed char": ctypes.c_byte,
    "unsigned char": ctypes.c_ubyte,
    "short": ctypes.c_short,
    "unsigned short": ctypes.c_ushort,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "unsigned": ctypes.c_uint,
    "long": ctypes.c_long,
    "unsigned long": ctypes.c_ulong,
    "long long": ctypes.c_longlong,
    "unsigned long long": ctypes.c_ulonglong,
    "int8_t": ctypes.c_int8,
    "uint8_t": ctypes.c_uint8,
    "int16_t": ctypes.c_int16,
    "uint16_t": ctypes.c_uint16,
    "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "ssize_t": ctypes.c_ssize_t,
    "intptr_t": ctypes.c_ssize_t,
    "uintptr_t": ctypes.c_size_t,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
}

_CHARS = (ctypes.c_char, ctypes.c_byte, ctypes.c_ubyte)


def _name(ctype):
    if ctype is None:
        return "None (void)"
    name = getattr(ctype, "__name__", repr(ctype))
    # c_size_t, c_uint64... are aliases of the platform's own types.
    aliases = sorted(
        n for n in dir(ctypes) if n.startswith("c_") and getattr(ctypes, n) is ctype and n != name
    )
    return "{} (= {})".format(name, ", ".join(aliases)) if aliases else name


def _is_function_pointer(ctype):
    return isinstance(ctype, type) and issubclass(ctype, ctypes._CFuncPtr)


class Checker:
    def __init__(self, header):
        self.header = header

    def resolve(self, ctype):
        """Follows typedef aliases: ``ws_handle`` -> ``uint64_t``."""
        seen = set()
        while ctype.base in self.header.aliases and ctype.base not in seen:
            seen.add(ctype.base)
            target = self.header.aliases[ctype.base]
            ctype = CType(target.base, target.pointers + ctype.pointers, ctype.text)
        return ctype

    def mismatch(self, actual, declared):
        """None when the ctypes type ``actual`` fits the C type
        ``declared``, else why not."""
        if isinstance(declared, FunctionType):
            if actual is ctypes.c_void_p:
                return None
            return self.function_pointer_mismatch(actual, declared)
        c = self.resolve(declared)
        if c.pointers == 0 and c.base in self.header.function_pointers:
            if actual is ctypes.c_void_p:
                return None
            return self.function_pointer_mismatch(actual, self.header.function_pointers[c.base])
        if c.pointers == 0 and c.base == "void":
            return None if actual is None else "is {}, the header has void".format(_name(actual))
        if c.pointers == 0:
            expected = _SCALARS.get(c.base)
            if expected is None:
                return "the header's type {} has no mapping in this test".format(declared)
            if actual is expected:
                return None
            return "is {}, the header's {} is {}".format(_name(actual), declared, _name(expected))
        allowed = self.pointer_types(c)
        if actual in allowed:
            return None
        return "is {}, the header's {} is one of {}".format(
            _name(actual), declared, ", ".join(_name(t) for t in allowed)
        )

    def pointer_types(self, c):
        """The ctypes types that fit a pointer type (c.pointers >= 1)."""
        allowed = [ctypes.c_void_p]
        target = None
        if c.pointers == 1 and c.base in ("void",):
            return allowed
        if c.base in _SCALARS:
            target = _SCALARS[c.base]
        elif c.base in self.header.structs:
            cls = getattr(_ffi, c.base, None)
            if isinstance(cls, type) and issubclass(cls, (ctypes.Structure, ctypes.Union)):
                target = cls
        if c.pointers == 1 and target in _CHARS:
            allowed.append(ctypes.c_char_p)
        if target is not None:
            pointer = target
            for _ in range(c.pointers):
                pointer = ctypes.POINTER(pointer)
            allowed.append(pointer)
        return allowed

    def function_pointer_mismatch(self, actual, declared):
        if not _is_function_pointer(actual):
            return "is {}, the header has a function pointer".format(_name(actual))
        problems = self.signature_problems(actual._restype_, actual._argtypes_, declared)
        if not problems:
            return None
        return "does not match the header's function pointer type: " + "; ".join(problems)

    def signature_problems(self, restype, argtypes, declared):
        problems = []
        why = self.mismatch(restype, declared.restype)
        if why:
            problems.append("return type " + why)
        argtypes = list(argtypes or [])
        if len(argtypes) != len(declared.params):
            problems.append(
                "{} parameter(s), the header has {} ({})".format(
                    len(argtypes),
                    len(declared.params),
                    ", ".join(str(t) + (" " + n if n else "") for t, n in declared.params)
                    or "void",
                )
            )
            return problems
        for i, (actual, (ctype, name)) in enumerate(zip(argtypes, declared.params), 1):
            why = self.mismatch(actual, ctype)
            if why:
                problems.append("parameter {} ({}) {}".format(i, name or ctype, why))
        return problems


def _fail(problems, what):
    if problems:
        pytest.fail(
            "_ffi.py disagrees with include/wsembed.h on {}:\n  {}".format(
                what, "\n  ".join(problems)
            ),
            pytrace=False,
        )


# ----- what _ffi.py declares -----------------------------------------------


def _ffi_constants():
    return {name: value for name, value in vars(_ffi).items() if name.startswith("WS_")}


def _ffi_functions():
    """``{name: (argtypes, restype)}`` of every library function _ffi
    declares: its table, and any function of ``lib`` given argtypes."""
    declared = {}
    names = set(getattr(_ffi, "SIGNATURES", {}))
    for name, value in vars(_ffi.lib).items():
        if isinstance(value, ctypes._CFuncPtr) and value.argtypes is not None:
            names.add(name)
    for name in sorted(names):
        function = getattr(_ffi.lib, name)
        declared[name] = (function.argtypes, function.restype)
    return declared


# ----- the tests -----------------------------------------------------------


def test_every_ffi_constant_is_in_the_header(header):
    problems = []
    for name, value in sorted(_ffi_constants().items()):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append("{} is {!r}, not an integer".format(name, value))
        elif name not in header.constants:
            problems.append("{} = {} is not in the header".format(name, value))
        elif header.constants[name] is None:
            problems.append("{}: the header's value is not a number".format(name))
        elif header.constants[name] != value:
            problems.append(
                "{} is {} in _ffi.py, {} in the header".format(name, value, header.constants[name])
            )
    _fail(problems, "constants")


def test_every_status_code_of_the_header_is_in_ffi(header):
    ffi = _ffi_constants()
    codes = [n for n in header.constants if n == "WS_OK" or n.startswith("WS_ERR_")]
    assert len(codes) > 1, "no WS_ERR_* constant found in the header"
    problems = [
        "{} = {} is not declared".format(name, header.constants[name])
        for name in codes
        if name not in ffi
    ]
    _fail(problems, "status codes")
    # Each code has its name in STATUS_NAMES (WebSocketError.status_name).
    names = getattr(_ffi, "STATUS_NAMES", {})
    problems = [
        "STATUS_NAMES[{}] is {!r}, not {!r}".format(ffi[name], names.get(ffi[name]), name)
        for name in codes
        if names.get(ffi[name]) != name
    ]
    _fail(problems, "status names")


def test_every_ffi_function_has_the_header_signature(header):
    checker = Checker(header)
    functions = _ffi_functions()
    assert "ws_open" in functions, "_ffi.py declares no ws_open"
    problems = []
    for name, (argtypes, restype) in sorted(functions.items()):
        declared = header.functions.get(name)
        if declared is None:
            problems.append("{} is not a function of the header".format(name))
            continue
        if argtypes is None:
            problems.append("{}: no argtypes set".format(name))
            continue
        for why in checker.signature_problems(restype, argtypes, declared):
            problems.append("{}: {}".format(name, why))
    _fail(problems, "function signatures")


def test_ffi_types_match_the_header(header):
    """The typedefs _ffi.py mirrors by name: scalar aliases
    (``ws_handle``), structs (``ws_event``, a prefix of the header's, as
    fields may be appended) and callback types (``ws_callback``)."""
    checker = Checker(header)
    problems = []
    checked = 0
    for name, value in sorted(vars(_ffi).items()):
        if not isinstance(value, type) or not name.startswith("ws_"):
            continue
        if name in header.function_pointers:
            why = checker.function_pointer_mismatch(value, header.function_pointers[name])
        elif name in header.aliases:
            why = checker.mismatch(value, CType(name, 0, name))
        elif issubclass(value, (ctypes.Structure, ctypes.Union)):
            why = _struct_mismatch(checker, value, header.structs.get(name, False))
        elif _is_function_pointer(value):
            why = "is not a function pointer type of the header"
        elif issubclass(value, (ctypes._SimpleCData, ctypes._Pointer)):
            why = "is not a typedef of the header"
        else:
            continue
        checked += 1
        if why:
            problems.append("{}: {}".format(name, why))
    _fail(problems, "types")
    assert checked, "no ws_* type of _ffi.py was checked"


def _struct_mismatch(checker, cls, fields):
    if fields is False:
        return "is not a struct of the header"
    if fields is None:
        return "is opaque in the header"
    ours = list(cls._fields_)
    if len(ours) > len(fields):
        return "has {} fields, the header's {}".format(len(ours), len(fields))
    problems = []
    for i, ((name, actual), (ctype, c_name)) in enumerate(zip(ours, fields), 1):
        if name != c_name:
            problems.append("field {} is {!r}, the header's is {!r}".format(i, name, c_name))
            continue
        why = checker.mismatch(actual, ctype)
        if why:
            problems.append("field {} {}".format(name, why))
    return "; ".join(problems) or None


# ----- the parser itself ----------------------------------------------------


def test_parser_reads_cbindgen_shapes():
    parsed = Header(
        """
        /* a comment with ws_fake(int); inside */
        #define WS_A -3
        #define WS_B ((int32_t)0x10)
        #define WS_S "text"
        typedef uint32_t ws_kind;
        typedef struct ws_opaque ws_opaque;
        typedef struct ws_pair { const uint8_t *data; size_t len; } ws_pair;
        typedef void (*ws_cb)(ws_kind kind, const struct ws_pair *pair, void *userdata);
        enum ws_e { WS_E0, WS_E5 = 5, WS_E6 };
        #ifdef __cplusplus
        extern "C" {
        #endif // __cplusplus
        int ws_f(struct ws_opaque *o,
                 const char *text);
        void ws_g(void);
        #ifdef __cplusplus
        }  // extern "C"
        #endif  // __cplusplus
        """
    )
    assert parsed.constants == {
        "WS_A": -3,
        "WS_B": 16,
        "WS_S": None,
        "WS_E0": 0,
        "WS_E5": 5,
        "WS_E6": 6,
    }
    assert parsed.aliases["ws_kind"].base == "uint32_t"
    assert parsed.structs["ws_opaque"] is None
    assert [n for _, n in parsed.structs["ws_pair"]] == ["data", "len"]
    assert [n for _, n in parsed.function_pointers["ws_cb"].params] == [
        "kind",
        "pair",
        "userdata",
    ]
    assert sorted(parsed.functions) == ["ws_f", "ws_g"]
    f = parsed.functions["ws_f"]
    assert [(t.base, t.pointers, n) for t, n in f.params] == [
        ("ws_opaque", 1, "o"),
        ("char", 1, "text"),
    ]
    assert parsed.functions["ws_g"].params == []
    checker = Checker(parsed)
    assert checker.mismatch(ctypes.c_uint32, CType.parse("ws_kind")) is None
    assert checker.mismatch(ctypes.c_uint16, CType.parse("ws_kind"))
    assert checker.mismatch(ctypes.c_char_p, CType.parse("const char *")) is None
    assert checker.mismatch(ctypes.c_char_p, CType.parse("struct ws_opaque *"))
