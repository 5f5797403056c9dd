"""XCDR1 (classic CDR, little endian) serializer for the message classes in :mod:`msgs`.

This is the encoding rmw_cyclonedds and rmw_fastrtps put on the wire for ROS 2 messages:
a 4-byte encapsulation header (``00 01 00 00`` = CDR little endian) then the fields in
declaration order, each aligned to its own size (max 8) counted from the end of the header;
strings are ``uint32 length-with-NUL`` + bytes + NUL; sequences are ``uint32 count`` + items;
nested structs are inlined.

Why our own serializer: the ``cyclonedds`` Python IDL packs sequences element by element
(slow for a 640x480 image); here primitive sequences are one ``memoryview`` copy each way and
runs of fixed-size fields are one precompiled ``struct`` call. Codecs are built once per class.
"""

from __future__ import annotations

import operator
import struct
from typing import Any, Callable

import numpy as np

from robot_stack.runtime.msgs import PRIMITIVE_DTYPES, Message, Prim, Seq

HEADER = b"\x00\x01\x00\x00"  # CDR_LE, options 0
_U32 = struct.Struct("<I")
_STRUCT_CHARS = {
    "bool": "?", "byte": "B", "char": "B", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H",
    "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q", "float32": "f", "float64": "d",
}
_SIZES = {k: struct.calcsize("<" + c) for k, c in _STRUCT_CHARS.items()}


class CdrError(ValueError):
    """A message that cannot be (de)serialized; the message names the field."""


class _Run:
    """A run of consecutive fixed-size primitive fields packed with one struct call.

    Layout (padding) depends on where the run starts modulo 8, so one Struct per start offset.
    """

    def __init__(self, names: list[str], prims: list[str]):
        self.names, self.prims = names, prims
        self.get = operator.attrgetter(*names)
        self._structs: dict[int, struct.Struct] = {}

    def struct_at(self, pos: int) -> struct.Struct:
        mod = pos & 7
        s = self._structs.get(mod)
        if s is None:
            fmt, p = "<", mod
            for prim in self.prims:
                size = _SIZES[prim]
                pad = (-p) % size
                fmt += "x" * pad + _STRUCT_CHARS[prim]
                p += pad + size
            s = self._structs[mod] = struct.Struct(fmt)
        return s


class Codec:
    """Serialize/deserialize one message class (built once, cached on the class)."""

    def __init__(self, cls: type[Message]):
        self.cls = cls
        self.names = [name for name, _ in cls._spec]
        self._enc: list[Callable[[Any, bytearray], None]] = []
        self._dec: list[Callable[[bytes, int, list], int]] = []
        self._fast_enc: Callable | None = None  # generated on first use (see _gen_encoder)
        self._fast_dec: Callable | None = None
        run_names: list[str] = []
        run_prims: list[str] = []
        for name, kind in cls._spec:
            if isinstance(kind, Prim) and kind.name != "string":
                run_names.append(name)
                run_prims.append(kind.name)
                continue
            if run_names:
                self._add_run(run_names, run_prims)
                run_names, run_prims = [], []
            self._add_field(name, kind)
        if run_names:
            self._add_run(run_names, run_prims)

    # -- building ---------------------------------------------------------------------------

    def _add_run(self, names: list[str], prims: list[str]) -> None:
        run = _Run(names, prims)
        single = len(names) == 1
        where = f"{self.cls.__name__}.{'/'.join(names)}"

        def enc(msg, buf: bytearray) -> None:
            vals = run.get(msg)
            try:
                buf += run.struct_at(len(buf) - 4).pack(vals) if single else run.struct_at(len(buf) - 4).pack(*vals)
            except struct.error as exc:
                raise CdrError(f"{where}: {exc} (got {vals!r})") from None

        def dec(data, pos: int, out: list) -> int:
            s = run.struct_at(pos - 4)
            out.extend(s.unpack_from(data, pos))
            return pos + s.size

        self._enc.append(enc)
        self._dec.append(dec)

    def _add_field(self, name: str, kind: Any) -> None:
        where = f"{self.cls.__name__}.{name}"
        get = operator.attrgetter(name)
        if isinstance(kind, Prim):  # string
            self._enc.append(lambda msg, buf: _enc_string(get(msg), buf, where, kind.bound))
            self._dec.append(lambda data, pos, out: _dec_string(data, pos, out, where))
        elif isinstance(kind, Seq):
            elem = kind.elem
            if isinstance(elem, str) and elem != "string":
                dtype = np.dtype(PRIMITIVE_DTYPES[elem])
                self._enc.append(lambda msg, buf: _enc_prim_seq(get(msg), buf, dtype, kind.length, where))
                self._dec.append(lambda data, pos, out: _dec_prim_seq(data, pos, out, dtype, kind.length, where))
            elif elem == "string":
                self._enc.append(lambda msg, buf: _enc_str_seq(get(msg), buf, where))
                self._dec.append(lambda data, pos, out: _dec_str_seq(data, pos, out, where))
            else:
                sub = codec(elem)
                self._enc.append(lambda msg, buf: _enc_msg_seq(get(msg), buf, sub, where))
                self._dec.append(lambda data, pos, out: _dec_msg_seq(data, pos, out, sub, where))
        else:
            sub = codec(kind)

            def enc(msg, buf: bytearray) -> None:
                value = get(msg)
                if not isinstance(value, sub.cls):
                    raise CdrError(f"{where}: expected {sub.cls.__name__}, got {type(value).__name__}")
                sub.encode_into(value, buf)

            def dec(data, pos: int, out: list) -> int:
                obj, pos = sub.decode_from(data, pos)
                out.append(obj)
                return pos

            self._enc.append(enc)
            self._dec.append(dec)

    # -- public -----------------------------------------------------------------------------

    def encode_into(self, msg: Message, buf: bytearray) -> None:
        for op in self._enc:
            op(msg, buf)

    def decode_from(self, data, pos: int) -> tuple[Message, int]:
        out: list = []
        for op in self._dec:
            pos = op(data, pos, out)
        obj = object.__new__(self.cls)
        obj.__dict__.update(zip(self.names, out))
        return obj, pos

    def serialize(self, msg: Message, copy: bool = True) -> bytes | bytearray:
        """CDR bytes of ``msg`` including the 4-byte encapsulation header.

        ``copy=False`` returns the bytearray it was built in (saves one copy of an image)."""
        if type(msg) is not self.cls:
            raise CdrError(f"expected a {self.cls._type} message, got {type(msg).__name__}")
        if self._fast_enc is None:
            self._fast_enc = _gen_encoder(self.cls, True)
        buf = bytearray(HEADER)
        try:
            self._fast_enc(msg, buf)
        except Exception:  # noqa: BLE001 - the reference codec below names the bad field
            buf = bytearray(HEADER)
            self.encode_into(msg, buf)
        return bytes(buf) if copy else buf

    def deserialize(self, data: bytes | memoryview) -> Message:
        """Parse CDR bytes (with header); raises :class:`CdrError` on truncated/garbled input."""
        if len(data) < 4:
            raise CdrError(f"{self.cls._type}: {len(data)} bytes is shorter than the CDR header")
        if data[0] != 0 or data[1] != 1:
            raise CdrError(
                f"{self.cls._type}: unsupported encapsulation {bytes(data[:2]).hex()} (only XCDR1 little endian, 0001)"
            )
        if not isinstance(data, bytes):
            data = bytes(data)
        if self._fast_dec is None:
            self._fast_dec = _gen_decoder(self.cls, True)
        try:
            return self._fast_dec(data, 4)[0]
        except Exception:  # noqa: BLE001 - the reference codec below says what is wrong
            pass
        try:
            obj, _ = self.decode_from(data, 4)
        except struct.error as exc:
            raise CdrError(f"{self.cls._type}: truncated message ({len(data)} bytes): {exc}") from None
        return obj


def codec(cls: type[Message]) -> Codec:
    """The (cached) codec of a message class."""
    c = cls.__dict__.get("_codec")
    if c is None:
        c = Codec(cls)
        cls._codec = c
    return c


def serialize(msg: Message) -> bytes:
    """CDR bytes (with header) of a message instance."""
    return codec(type(msg)).serialize(msg)


def deserialize(cls: type[Message], data: bytes | memoryview) -> Message:
    return codec(cls).deserialize(data)


# --- field helpers -----------------------------------------------------------------------------


def _pad(buf: bytearray, align: int) -> None:
    pad = (-(len(buf) - 4)) % align
    if pad:
        buf += b"\x00" * pad


def _enc_string(value, buf: bytearray, where: str, bound: int = 0) -> None:
    if not isinstance(value, str):
        raise CdrError(f"{where}: expected a str, got {type(value).__name__} {value!r:.60}")
    raw = value.encode("utf-8")
    if bound and len(raw) > bound:
        raise CdrError(f"{where}: string of {len(raw)} bytes exceeds bound {bound}")
    _pad(buf, 4)
    buf += _U32.pack(len(raw) + 1)
    buf += raw
    buf += b"\x00"


def _dec_string(data, pos: int, out: list, where: str) -> int:
    pos += (-(pos - 4)) % 4
    (n,) = _U32.unpack_from(data, pos)
    pos += 4
    end = pos + n
    if n == 0 or end > len(data):
        raise CdrError(f"{where}: string length {n} runs past the end of the message ({len(data)} bytes)")
    try:
        out.append(bytes(data[pos:end - 1]).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CdrError(f"{where}: not UTF-8: {exc}") from None
    return end


def _enc_prim_seq(value, buf: bytearray, dtype: np.dtype, length: int | None, where: str) -> None:
    try:
        arr = np.ascontiguousarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise CdrError(f"{where}: cannot convert to {dtype} array: {exc}") from None
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if length is None:
        _pad(buf, 4)
        buf += _U32.pack(arr.size)
    elif arr.size != length:
        raise CdrError(f"{where}: fixed array needs {length} items, got {arr.size}")
    if arr.size:
        _pad(buf, min(dtype.itemsize, 8))
        buf += memoryview(arr).cast("B")


def _dec_prim_seq(data, pos: int, out: list, dtype: np.dtype, length: int | None, where: str) -> int:
    if length is None:
        pos += (-(pos - 4)) % 4
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
    else:
        n = length
    if n:
        pos += (-(pos - 4)) % min(dtype.itemsize, 8)
    nbytes = n * dtype.itemsize
    if pos + nbytes > len(data):
        raise CdrError(f"{where}: {n} items run past the end of the message ({len(data)} bytes)")
    # copy: the result is writable and aligned, and does not pin the receive buffer
    out.append(np.frombuffer(data, dtype=dtype, count=n, offset=pos).copy())
    return pos + nbytes


def _enc_str_seq(value, buf: bytearray, where: str) -> None:
    if isinstance(value, str) or not hasattr(value, "__len__"):
        raise CdrError(f"{where}: expected a list of str, got {type(value).__name__}")
    _pad(buf, 4)
    buf += _U32.pack(len(value))
    for s in value:
        _enc_string(s, buf, where)


def _dec_str_seq(data, pos: int, out: list, where: str) -> int:
    pos += (-(pos - 4)) % 4
    (n,) = _U32.unpack_from(data, pos)
    pos += 4
    if n > len(data) - pos:  # each string takes >= 5 bytes; cheap sanity bound
        raise CdrError(f"{where}: {n} strings cannot fit in the message ({len(data)} bytes)")
    items: list = []
    for _ in range(n):
        pos = _dec_string(data, pos, items, where)
    out.append(items)
    return pos


def _enc_msg_seq(value, buf: bytearray, sub: Codec, where: str) -> None:
    if not hasattr(value, "__len__"):
        raise CdrError(f"{where}: expected a list of {sub.cls.__name__}, got {type(value).__name__}")
    _pad(buf, 4)
    buf += _U32.pack(len(value))
    for item in value:
        if not isinstance(item, sub.cls):
            raise CdrError(f"{where}: expected {sub.cls.__name__} items, got {type(item).__name__}")
        sub.encode_into(item, buf)


def _dec_msg_seq(data, pos: int, out: list, sub: Codec, where: str) -> int:
    pos += (-(pos - 4)) % 4
    (n,) = _U32.unpack_from(data, pos)
    pos += 4
    if n > len(data) - pos:
        raise CdrError(f"{where}: {n} items cannot fit in the message ({len(data)} bytes)")
    items = []
    for _ in range(n):
        obj, pos = sub.decode_from(data, pos)
        items.append(obj)
    out.append(items)
    return pos


# --- generated fast paths ----------------------------------------------------------------------
#
# The closure codec above is the reference: clear per-field errors, easy to read. For speed each
# class also gets one generated function per direction with nested structs inlined, runs of
# fixed-size fields packed by one precompiled struct (padding resolved at generation time when
# the offset modulo 8 is statically known) and no per-field calls. Any exception on the fast
# path re-runs the reference codec, which raises the precise CdrError.


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "U32": _U32, "frombuffer": np.frombuffer, "ascontig": np.ascontiguousarray,
            "CdrError": CdrError, "new": object.__new__, "ZEROS": [b"\x00" * i for i in range(8)],
        }
        self.n = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, prefix: str, value: Any) -> str:
        key = self.name(prefix)
        self.env[key] = value
        return key

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _pad_expr(align_to: int, pos_expr: str) -> str:
    return f"(-({pos_expr} - 4)) & {align_to - 1}"


def _struct_for(prims: list[str], start_mod: int) -> struct.Struct:
    fmt, p = "<", start_mod
    for prim in prims:
        size = _SIZES[prim]
        pad = (-p) % size
        fmt += "x" * pad + _STRUCT_CHARS[prim]
        p += pad + size
    return struct.Struct(fmt)


def _gen_encoder(cls: type[Message], static_start: bool) -> Callable:
    g = _Gen()
    g.emit(0, "def enc(m, buf):")

    def flush(run: list[tuple[str, str]], align: int | None) -> int | None:
        exprs = ", ".join(e for e, _ in run)
        prims = [p for _, p in run]
        if align is not None:
            s = _struct_for(prims, align)
            g.emit(1, f"buf += {g.const('S', s)}.pack({exprs})")
            return (align + s.size) % 8
        r = g.const("R", _Run([str(i) for i in range(len(prims))], prims))
        g.emit(1, f"buf += {r}.struct_at(len(buf) - 4).pack({exprs})")
        return None

    def pad(to: int, align: int | None) -> None:
        if to > 1 and (align is None or align % to):
            g.emit(1, f"buf += ZEROS[{_pad_expr(to, 'len(buf)')}]")

    def walk(expr: str, k: type[Message], align: int | None) -> int | None:
        run: list[tuple[str, str]] = []
        for name, kind in k._spec:
            e = f"{expr}.{name}"
            if isinstance(kind, Prim) and kind.name != "string":
                run.append((e, kind.name))
                continue
            if run:
                align = flush(run, align)
                run = []
            if isinstance(kind, Prim):  # string
                v = g.name("s")
                g.emit(1, f"{v} = {e}.encode()")
                if kind.bound:
                    g.emit(1, f"if len({v}) > {kind.bound}: raise ValueError")
                pad(4, align)
                g.emit(1, f"buf += U32.pack(len({v}) + 1); buf += {v}; buf += b'\\x00'")
                align = None
            elif isinstance(kind, Seq) and isinstance(kind.elem, str) and kind.elem != "string":
                dt = np.dtype(PRIMITIVE_DTYPES[kind.elem])
                a = g.name("a")
                g.emit(1, f"{a} = ascontig({e}, {g.const('DT', dt)})")
                g.emit(1, f"if {a}.ndim != 1: {a} = {a}.reshape(-1)")
                if kind.length is None:
                    pad(4, align)
                    g.emit(1, f"buf += U32.pack({a}.size)")
                else:
                    g.emit(1, f"if {a}.size != {kind.length}: raise ValueError")
                g.emit(1, f"if {a}.size:")
                if dt.itemsize > 1:
                    g.emit(2, f"buf += ZEROS[{_pad_expr(min(dt.itemsize, 8), 'len(buf)')}]")
                g.emit(2, f"buf += memoryview({a}).cast('B')")
                align = None
            elif isinstance(kind, Seq) and kind.elem == "string":
                lst = g.name("L")
                g.emit(1, f"{lst} = {e}")
                g.emit(1, f"if isinstance({lst}, str): raise TypeError")
                pad(4, align)
                g.emit(1, f"buf += U32.pack(len({lst}))")
                g.emit(1, f"for s in {lst}:")
                g.emit(2, "s = s.encode(); buf += ZEROS[(-(len(buf) - 4)) & 3]; "
                          "buf += U32.pack(len(s) + 1); buf += s; buf += b'\\x00'")
                align = None
            elif isinstance(kind, Seq):
                sub = g.const("ENC", _fast(kind.elem)[0])
                kk = g.const("K", kind.elem)
                lst = g.name("L")
                g.emit(1, f"{lst} = {e}")
                pad(4, align)
                g.emit(1, f"buf += U32.pack(len({lst}))")
                g.emit(1, f"for it in {lst}:")
                g.emit(2, f"if type(it) is not {kk}: raise TypeError")
                g.emit(2, f"{sub}(it, buf)")
                align = None
            else:
                g.emit(1, f"if type({e}) is not {g.const('K', kind)}: raise TypeError")
                align = walk(e, kind, align)
        if run:
            align = flush(run, align)
        return align

    walk("m", cls, 0 if static_start else None)
    g.emit(1, "return None")
    exec(compile("\n".join(g.lines), f"<cdr encoder {cls._type}>", "exec"), g.env)  # noqa: S102 - generated from our own specs
    return g.env["enc"]


def _gen_decoder(cls: type[Message], static_start: bool) -> Callable:
    g = _Gen()
    g.emit(0, "def dec(data, pos):")
    dlen = "len(data)"

    def objects(k: type[Message], target: str | None) -> str:
        o = g.name("o")
        g.emit(1, f"{o} = new({g.const('K', k)}); d{o} = {o}.__dict__")
        if target:
            g.emit(1, f"{target} = {o}")
        return o

    def walk(k: type[Message], o: str, align: int | None) -> int | None:
        run: list[tuple[str, str]] = []

        def flush(align: int | None) -> int | None:
            targets = ", ".join(t for t, _ in run) + ","
            prims = [p for _, p in run]
            run.clear()
            if align is not None:
                s = _struct_for(prims, align)
                sn = g.const("S", s)
                g.emit(1, f"{targets} = {sn}.unpack_from(data, pos); pos += {s.size}")
                return (align + s.size) % 8
            r = g.const("R", _Run([str(i) for i in range(len(prims))], prims))
            g.emit(1, f"s_ = {r}.struct_at(pos - 4); {targets} = s_.unpack_from(data, pos); pos += s_.size")
            return None

        def pad(to: int) -> None:
            if to > 1 and (align is None or align % to):
                g.emit(1, f"pos += {_pad_expr(to, 'pos')}")

        for name, kind in k._spec:
            t = f"d{o}['{name}']"
            if isinstance(kind, Prim) and kind.name != "string":
                run.append((t, kind.name))
                continue
            if run:
                align = flush(align)
            if isinstance(kind, Prim):
                pad(4)
                g.emit(1, "n_, = U32.unpack_from(data, pos); pos += 4; end_ = pos + n_")
                g.emit(1, f"if n_ == 0 or end_ > {dlen}: raise CdrError('string')")
                g.emit(1, f"{t} = data[pos:end_ - 1].decode(); pos = end_")
                align = None
            elif isinstance(kind, Seq) and isinstance(kind.elem, str) and kind.elem != "string":
                dt = np.dtype(PRIMITIVE_DTYPES[kind.elem])
                if kind.length is None:
                    pad(4)
                    g.emit(1, "n_, = U32.unpack_from(data, pos); pos += 4")
                else:
                    g.emit(1, f"n_ = {kind.length}")
                if dt.itemsize > 1:
                    g.emit(1, f"if n_: pos += {_pad_expr(min(dt.itemsize, 8), 'pos')}")
                g.emit(1, f"nb_ = n_ * {dt.itemsize}")
                g.emit(1, f"if pos + nb_ > {dlen}: raise CdrError('sequence')")
                g.emit(1, f"{t} = frombuffer(data, {g.const('DT', dt)}, n_, pos).copy(); pos += nb_")
                align = None
            elif isinstance(kind, Seq) and kind.elem == "string":
                pad(4)
                g.emit(1, "n_, = U32.unpack_from(data, pos); pos += 4")
                g.emit(1, f"if n_ > {dlen} - pos: raise CdrError('sequence')")
                g.emit(1, "l_ = []")
                g.emit(1, "for _ in range(n_):")
                g.emit(2, "pos += (-(pos - 4)) & 3; k_, = U32.unpack_from(data, pos); pos += 4; e_ = pos + k_")
                g.emit(2, f"if k_ == 0 or e_ > {dlen}: raise CdrError('string')")
                g.emit(2, "l_.append(data[pos:e_ - 1].decode()); pos = e_")
                g.emit(1, f"{t} = l_")
                align = None
            elif isinstance(kind, Seq):
                sub = g.const("DEC", _fast(kind.elem)[1])
                pad(4)
                g.emit(1, "n_, = U32.unpack_from(data, pos); pos += 4")
                g.emit(1, f"if n_ > {dlen} - pos: raise CdrError('sequence')")
                g.emit(1, "l_ = []")
                g.emit(1, "for _ in range(n_):")
                g.emit(2, f"it_, pos = {sub}(data, pos); l_.append(it_)")
                g.emit(1, f"{t} = l_")
                align = None
            else:
                child = objects(kind, t)
                align = walk(kind, child, align)
        if run:
            align = flush(align)
        return align

    root = objects(cls, None)
    walk(cls, root, 0 if static_start else None)
    g.emit(1, f"return {root}, pos")
    exec(compile("\n".join(g.lines), f"<cdr decoder {cls._type}>", "exec"), g.env)  # noqa: S102
    return g.env["dec"]


_FAST: dict[type, tuple[Callable, Callable]] = {}


def _fast(cls: type[Message]) -> tuple[Callable, Callable]:
    """(encoder, decoder) for ``cls`` starting at an unknown alignment (used inside sequences)."""
    f = _FAST.get(cls)
    if f is None:
        f = _FAST[cls] = (_gen_encoder(cls, False), _gen_decoder(cls, False))
    return f
