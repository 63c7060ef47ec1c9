"""Read TensorFlow V2 checkpoints (``prefix.index`` + ``prefix.data-*``) without TensorFlow.

The authors' released models are TensorFlow-1 checkpoints written by ``tf.train.Saver`` (format
V2, a "tensor bundle"). This module reads them with numpy and the standard library only: no
TensorFlow, no protobuf.

Format, as written by TensorFlow's ``tensor_bundle.cc`` and its vendored LevelDB table code
(``tensorflow/core/lib/io``):

* ``prefix.index`` is an SSTable. It ends in a 48-byte footer: two block handles (metaindex,
  index; each a pair of varint64 offset/size) padded to 40 bytes, then the 8-byte magic
  ``0xdb4775248b80fb57`` (little endian). The index block maps a separator key to the handle
  of each data block. Every block holds prefix-compressed entries
  (``varint32 shared, varint32 non_shared, varint32 value_len, key delta, value``) followed by
  ``uint32`` restart offsets and their ``uint32`` count, and is followed in the file by a
  5-byte trailer: 1 byte compression type (TensorFlow writes 0, none, for bundles) and the
  masked crc32c of the block and that type byte.
* Keys are tensor names, sorted bytewise. The empty key holds a ``BundleHeaderProto``
  (num_shards, endianness, version); every other value is a ``BundleEntryProto`` (dtype,
  shape, shard_id, offset, size, crc32c, slices), decoded here by hand from the protobuf wire
  format.
* A tensor's bytes are ``size`` bytes at ``offset`` in ``prefix.data-{shard:05d}-of-{n:05d}``,
  raw and row major in the writer's byte order (the header says which). String tensors hold
  varint64 lengths, a masked crc32c of those lengths, then the bytes of every element.
* ``crc32c`` in an entry is the masked CRC-32C (Castagnoli) of the tensor's bytes in the file.

Partitioned variables (entries with ``slices``) are listed but not read: :meth:`TFCheckpoint.read`
raises :class:`TFCheckpointError` naming them.

CRC-32C comes from the ``google-crc32c`` package. Written by hand, rather than with the
``tensorflow-checkpoint-reader`` package, because that one pins ``protobuf<3.19``, which no
current TensorFlow or protobuf installs beside.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import numpy as np

__all__ = [
    "TFCheckpoint",
    "TFCheckpointError",
    "TensorInfo",
    "crc32c",
    "find_checkpoints",
]


class TFCheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checkpoint, as its index describes it (no tensor data is read).

    ``dtype`` is the stored type: a numpy dtype name (``'float32'``, ``'int64'``, ``'bool'``...)
    or, for types numpy lacks, TensorFlow's name: ``'bfloat16'`` (read as float32), ``'string'``
    (read as an object array of ``bytes``), or a type that cannot be read (``'resource'``,
    ``'variant'``, ``'qint8'``..., ``'dtype_enum_<n>'`` for an unknown enum).
    ``shard``/``offset``/``size`` locate the bytes in ``prefix.data-{shard:05d}-of-{n:05d}``;
    ``crc32c`` is TensorFlow's masked CRC-32C of those bytes. ``num_slices`` is non-zero for a
    partitioned variable, whose data sits in other, hidden entries (not supported).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int
    num_slices: int = 0


# --------------------------------------------------------------------------------------------
# dtypes: TensorFlow's DataType enum (tensorflow/core/framework/types.proto) -> (name, numpy
# storage dtype in little-endian byte order, or None when the layout is not plain memory).
_DTYPES: dict[int, tuple[str, str | None]] = {
    1: ("float32", "<f4"),
    2: ("float64", "<f8"),
    3: ("int32", "<i4"),
    4: ("uint8", "|u1"),
    5: ("int16", "<i2"),
    6: ("int8", "|i1"),
    7: ("string", None),
    8: ("complex64", "<c8"),
    9: ("int64", "<i8"),
    10: ("bool", "|b1"),
    11: ("qint8", None),
    12: ("quint8", None),
    13: ("qint32", None),
    14: ("bfloat16", "<u2"),
    15: ("qint16", None),
    16: ("quint16", None),
    17: ("uint16", "<u2"),
    18: ("complex128", "<c16"),
    19: ("float16", "<f2"),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", "<u4"),
    23: ("uint64", "<u8"),
}
_DT_STRING = 7
_DT_BFLOAT16 = 14

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # 2 * BlockHandle::kMaxEncodedLength (20) + 8 bytes of magic
_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c
_READER_VERSION = 1  # kTensorBundleVersion: the bundle format version this reader implements


# --------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TensorFlow's lib/hash/crc32c.

_MASK_DELTA = 0xA282EAD8


def _mask(crc: int) -> int:
    """TensorFlow's crc32c::Mask: rotate right by 15 bits and add a constant (mod 2**32)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def crc32c(data: bytes | bytearray | memoryview | np.ndarray, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data`` (any C-contiguous buffer), extending ``crc`` (google-crc32c,
    which is C code: ~10 GB/s here)."""
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:  # zero-copy; google-crc32c takes bytes and arrays but not memoryview/bytearray
        buf = np.frombuffer(data, dtype=np.uint8)
    return google_crc32c.extend(crc, buf)


# --------------------------------------------------------------------------------------------
# Wire-format decoding (LevelDB varints, protobuf messages).


class _Corrupt(Exception):
    """Internal: a decoding problem; turned into TFCheckpointError with the file name."""


def _varint(buf: bytes | memoryview, pos: int, limit: int | None = None) -> tuple[int, int]:
    end = len(buf) if limit is None else limit
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _Corrupt("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Corrupt("varint longer than 10 bytes")


def _proto_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of each field of a serialized protobuf message."""
    buf = memoryview(buf)
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _Corrupt("protobuf field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > n:
                raise _Corrupt("truncated protobuf fixed64")
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > n:
                raise _Corrupt("truncated protobuf length-delimited field")
            value = buf[pos : pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > n:
                raise _Corrupt("truncated protobuf fixed32")
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise _Corrupt(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _expect(wire: int, want: int, what: str) -> None:
    if wire != want:
        raise _Corrupt(f"{what} has protobuf wire type {wire}, expected {want}")


@dataclass(frozen=True)
class _Header:
    num_shards: int
    big_endian: bool
    producer: int
    min_consumer: int
    bad_consumers: tuple[int, ...]


def _message(buf: bytes | memoryview, schema: dict[int, tuple[str, int]], what: str) -> dict[str, list]:
    """The fields of a protobuf message that ``schema`` names (number -> (name, wire type)), each
    as the list of its values in order; wire types are checked, other fields skipped. A packed
    repeated varint field (wire type 2 where 0 is expected) is unpacked."""
    out: dict[str, list] = {}
    for field, wire, v in _proto_fields(buf):
        if field not in schema:
            continue
        name, want = schema[field]
        if want == 0 and wire == 2:  # packed repeated varints
            pos, values = 0, out.setdefault(name, [])
            while pos < len(v):
                item, pos = _varint(v, pos)
                values.append(item)
            continue
        _expect(wire, want, f"{what}.{name}")
        out.setdefault(name, []).append(v)
    return out


def _last(fields: dict[str, list], name: str, default: int = 0) -> int:
    """A scalar field's value (the last one wins, as protobuf parsers do)."""
    return _signed64(fields[name][-1]) if name in fields else default


def _parse_header(value: bytes | memoryview) -> _Header:
    header = _message(value, {1: ("num_shards", 0), 2: ("endianness", 0), 3: ("version", 2)}, "BundleHeaderProto")
    version = (_message(header["version"][-1], {1: ("producer", 0), 2: ("min_consumer", 0), 3: ("bad_consumers", 0)},
                        "VersionDef") if "version" in header else {})
    endianness = _last(header, "endianness")
    if endianness not in (0, 1):
        raise _Corrupt(f"bundle header has unknown endianness {endianness}")
    return _Header(_last(header, "num_shards"), endianness == 1, _last(version, "producer"),
                   _last(version, "min_consumer"), tuple(_signed64(v) for v in version.get("bad_consumers", [])))


def _parse_shape(value: memoryview) -> tuple[int, ...]:
    shape = _message(value, {2: ("dim", 2), 3: ("unknown_rank", 0)}, "TensorShapeProto")
    if _last(shape, "unknown_rank"):
        raise _Corrupt("tensor shape has unknown rank")
    dims = tuple(_last(_message(dim, {1: ("size", 0)}, "TensorShapeProto.Dim"), "size") for dim in shape.get("dim", []))
    if any(size < 0 for size in dims):
        raise _Corrupt(f"tensor shape has an unknown or negative dimension ({dims})")
    return dims


_ENTRY_FIELDS = {1: ("dtype", 0), 2: ("shape", 2), 3: ("shard_id", 0), 4: ("offset", 0), 5: ("size", 0),
                 6: ("crc32c", 5), 7: ("slices", 2)}


def _parse_entry(name: str, value: bytes | memoryview) -> tuple[int, TensorInfo]:
    entry = _message(value, _ENTRY_FIELDS, "BundleEntryProto")
    dtype, shard, offset, size = (_last(entry, k) for k in ("dtype", "shard_id", "offset", "size"))
    shape = _parse_shape(entry["shape"][-1]) if "shape" in entry else ()
    if shard < 0 or offset < 0 or size < 0:
        raise _Corrupt(f"negative shard/offset/size ({shard}/{offset}/{size})")
    dtype_name = _DTYPES[dtype][0] if dtype in _DTYPES else f"dtype_enum_{dtype}"
    crc = entry["crc32c"][-1] if "crc32c" in entry else 0
    return dtype, TensorInfo(name, dtype_name, shape, shard, offset, size, crc, len(entry.get("slices", [])))


# --------------------------------------------------------------------------------------------
# SSTable (LevelDB table format as vendored in TensorFlow's lib/io).


def _block_handle(buf: bytes | memoryview, pos: int) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, what: str) -> memoryview:
    """The contents of the block at ``offset`` (checks bounds, trailer CRC and compression)."""
    end = offset + size
    if end + _TRAILER_SIZE > len(data) - _FOOTER_SIZE:
        raise _Corrupt(
            f"{what} at offset {offset} (+{size} bytes) runs past the end of the file "
            f"({len(data)} bytes): truncated index?"
        )
    kind = data[end]
    stored = int.from_bytes(data[end + 1 : end + _TRAILER_SIZE], "little")
    actual = crc32c(memoryview(data)[offset : end + 1])
    if _unmask(stored) != actual:
        raise _Corrupt(f"{what} at offset {offset}: block checksum mismatch (corrupt index)")
    if kind == 1:
        raise _Corrupt(
            f"{what} at offset {offset} is snappy-compressed; TensorFlow writes checkpoint "
            "indexes uncompressed and this reader does not decompress snappy"
        )
    if kind != 0:
        raise _Corrupt(f"{what} at offset {offset} has unknown compression type {kind}")
    return memoryview(data)[offset:end]


def _block_entries(block: memoryview, what: str) -> Iterator[tuple[bytes, memoryview]]:
    """(key, value) of each entry of a block, keys rebuilt from their shared prefixes."""
    n = len(block)
    if n < 4:
        raise _Corrupt(f"{what}: block of {n} bytes is too short")
    num_restarts = int.from_bytes(block[n - 4 :], "little")
    if num_restarts > (n - 4) // 4:
        raise _Corrupt(f"{what}: bad restart count {num_restarts}")
    limit = n - 4 * (1 + num_restarts)
    restarts = {int.from_bytes(block[limit + 4 * i : limit + 4 * i + 4], "little")
                for i in range(num_restarts)}
    key = b""
    pos = 0
    while pos < limit:
        start = pos
        shared, pos = _varint(block, pos, limit)
        non_shared, pos = _varint(block, pos, limit)
        value_len, pos = _varint(block, pos, limit)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise _Corrupt(f"{what}: bad entry at block offset {start}")
        if start in restarts and shared:
            raise _Corrupt(f"{what}: restart point at block offset {start} shares a prefix")
        key = key[:shared] + bytes(block[pos : pos + non_shared])
        pos += non_shared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _table_data_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each data block, from the footer and the index block."""
    if len(data) < _FOOTER_SIZE:
        raise _Corrupt(
            f"file is {len(data)} bytes, shorter than the {_FOOTER_SIZE}-byte table footer "
            "(truncated index?)"
        )
    footer = memoryview(data)[len(data) - _FOOTER_SIZE :]
    magic = int.from_bytes(footer[40:48], "little")
    if magic != _TABLE_MAGIC:
        raise _Corrupt(
            f"bad magic number 0x{magic:016x} (expected 0x{_TABLE_MAGIC:016x}): not a "
            "TensorFlow V2 checkpoint index, or truncated"
        )
    try:
        _, _, pos = _block_handle(footer, 0)  # metaindex: TensorFlow writes it empty
        index_offset, index_size, _ = _block_handle(footer, pos)
    except _Corrupt:
        raise _Corrupt("bad block handle in the table footer") from None
    index = _read_block(data, index_offset, index_size, "index block")
    blocks = []
    for _, value in _block_entries(index, "index block"):
        offset, size, _ = _block_handle(value, 0)
        blocks.append((offset, size))
    return blocks


def _table_items(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """Every (key, value) of an SSTable held in ``data``, in key order (checked)."""
    last: bytes | None = None
    for i, (offset, size) in enumerate(_table_data_blocks(data)):
        for key, value in _block_entries(_read_block(data, offset, size, f"data block {i}"),
                                         f"data block {i}"):
            if last is not None and key <= last:
                raise _Corrupt(f"keys out of order ({last!r} then {key!r})")
            last = key
            yield key, value


# --------------------------------------------------------------------------------------------
# The checkpoint.

_DATA_RE = re.compile(r"(.+)\.data-(\d{5})-of-(\d{5})")


def _data_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")


def _resolve_prefix(path: str | os.PathLike) -> Path:
    p = Path(os.fspath(path))
    if p.name.endswith(".index"):
        return p.with_name(p.name[: -len(".index")])
    m = _DATA_RE.fullmatch(p.name)
    if m:
        return p.with_name(m.group(1))
    if p.is_dir():
        found = find_checkpoints(p)
        hint = f"; found {', '.join(map(str, found[:5]))}" if found else "; no checkpoint in it"
        raise TFCheckpointError(f"{p} is a folder, not a checkpoint prefix{hint}")
    return p


class TFCheckpoint:
    """A TensorFlow V2 checkpoint, opened from its prefix (``'dir/net.tf-650000'``), its
    ``.index`` file or one of its ``.data-*`` files.

    The index is parsed once, on construction, which also checks that every data shard exists.
    Tensor data is read only by :meth:`read`, one tensor at a time::

        ckpt = TFCheckpoint("release/net.tf-650000")
        for name, info in ckpt.tensors().items():
            print(name, info.dtype, info.shape)
        w = ckpt.read("im/conv1/weights")
    """

    prefix: Path
    index_path: Path

    def __init__(self, prefix: str | os.PathLike) -> None:
        self.prefix = _resolve_prefix(prefix)
        self.index_path = self.prefix.with_name(self.prefix.name + ".index")
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            hint = (" (a file exists at the prefix itself: a V1 checkpoint? only V2 checkpoints,"
                    " written by tf.train.Saver's default write_version, are supported)"
                    if self.prefix.is_file() else "")
            raise TFCheckpointError(
                f"{self.index_path}: no such file (checkpoint prefix {self.prefix}){hint}"
            ) from None
        except OSError as e:
            raise TFCheckpointError(f"{self.index_path}: cannot read: {e}") from None
        try:
            self._header, self._dtypes, self._infos = self._parse(data)
        except _Corrupt as e:
            raise TFCheckpointError(f"{self.index_path}: {e}") from None
        for shard in range(self._header.num_shards):
            path = _data_path(self.prefix, shard, self._header.num_shards)
            if not path.is_file():
                raise TFCheckpointError(
                    f"{path}: missing data file of checkpoint {self.prefix} "
                    f"(shard {shard} of {self._header.num_shards})"
                )

    @staticmethod
    def _parse(data: bytes) -> tuple[_Header, dict[str, int], dict[str, TensorInfo]]:
        items = _table_items(data)
        first = next(items, None)
        if first is None or first[0] != b"":
            raise _Corrupt("no bundle header entry (empty key): not a TensorFlow V2 checkpoint")
        header = _parse_header(first[1])
        if header.num_shards < 1:
            raise _Corrupt(f"bundle header has num_shards={header.num_shards}")
        if header.min_consumer > _READER_VERSION or _READER_VERSION in header.bad_consumers:
            raise _Corrupt(
                f"bundle format version {header.producer} (min consumer "
                f"{header.min_consumer}) is newer than this reader's {_READER_VERSION}"
            )
        dtypes: dict[str, int] = {}
        infos: dict[str, TensorInfo] = {}
        for key, value in items:
            # Slices of a partitioned variable are stored under binary keys made by
            # checkpoint::EncodeTensorNameSlice, which start with a 0 byte; hide them.
            if key.startswith(b"\x00"):
                continue
            name = key.decode("utf-8", "surrogateescape")
            try:
                dtypes[name], info = _parse_entry(name, value)
            except _Corrupt as e:
                raise _Corrupt(f"entry {name!r}: {e}") from None
            if not info.num_slices and info.shard >= header.num_shards:
                raise _Corrupt(
                    f"entry {name!r} is in shard {info.shard}, but the checkpoint has "
                    f"{header.num_shards}"
                )
            infos[name] = info
        return header, dtypes, infos

    # -- listing ------------------------------------------------------------------------

    def tensors(self) -> dict[str, TensorInfo]:
        """Every tensor's :class:`TensorInfo`, by name, in the checkpoint's (sorted) order."""
        return dict(self._infos)

    def names(self) -> list[str]:
        """The tensor names, sorted as in the checkpoint."""
        return list(self._infos)

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def __len__(self) -> int:
        return len(self._infos)

    def __repr__(self) -> str:
        return f"TFCheckpoint({str(self.prefix)!r}, {len(self)} tensors)"

    @property
    def num_shards(self) -> int:
        """How many ``.data-*`` files the checkpoint has."""
        return self._header.num_shards

    def data_path(self, shard: int = 0) -> Path:
        """The path of data file ``shard``."""
        return _data_path(self.prefix, shard, self._header.num_shards)

    # -- reading ------------------------------------------------------------------------

    def read(self, name: str, *, verify: bool = True) -> np.ndarray:
        """The tensor ``name`` as a new numpy array of its shape, in native byte order.

        Only its ``size`` bytes are read from its data file. ``bfloat16`` comes back as
        ``float32`` (exact); ``string`` as an object array of ``bytes``. With ``verify`` the
        bytes are checked against the CRC-32C stored in the index.
        """
        info = self._infos.get(name)
        if info is None:
            close = difflib.get_close_matches(name, list(self._infos), n=3)
            hint = f"; close matches: {', '.join(map(repr, close))}" if close else ""
            raise TFCheckpointError(f"{self.index_path}: no tensor named {name!r}{hint}")
        where = f"{self.index_path}: tensor {name!r}"
        if info.num_slices:
            raise TFCheckpointError(
                f"{where} is a partitioned variable stored as {info.num_slices} slices; "
                "reading partitioned variables is not supported"
            )
        dtype = self._dtypes[name]
        storage = _DTYPES.get(dtype, (None, None))[1]
        if storage is None and dtype != _DT_STRING:
            raise TFCheckpointError(f"{where} has dtype {info.dtype}, which cannot be read")
        count = int(np.prod(info.shape, dtype=np.int64))
        if dtype != _DT_STRING and info.size != count * np.dtype(storage).itemsize:
            raise TFCheckpointError(
                f"{where}: size mismatch: the index says {info.size} bytes, but "
                f"{info.dtype}{list(info.shape)} needs {count * np.dtype(storage).itemsize}"
            )
        raw = self._read_bytes(info, where)
        if dtype == _DT_STRING:
            return self._strings(raw, count, info, where, verify)
        if verify and crc32c(raw) != _unmask(info.crc32c):
            raise self._crc_error(info)
        big = self._header.big_endian
        assert storage is not None
        arr = raw.view(np.dtype(storage).newbyteorder(">") if big else np.dtype(storage))
        if big and arr.dtype.itemsize > 1:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if dtype == _DT_BFLOAT16:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.reshape(info.shape)

    def _crc_error(self, info: TensorInfo) -> TFCheckpointError:
        return TFCheckpointError(
            f"{self.data_path(info.shard)}: tensor {info.name!r} (offset {info.offset}, "
            f"{info.size} bytes): CRC-32C mismatch, the data file is corrupt"
        )

    def _open_shard(self, shard: int) -> BinaryIO:
        return open(self.data_path(shard), "rb")

    def _read_bytes(self, info: TensorInfo, where: str) -> np.ndarray:
        path = self.data_path(info.shard)
        buf = np.empty(info.size, dtype=np.uint8)
        try:
            with self._open_shard(info.shard) as f:
                f.seek(info.offset)
                view = memoryview(buf)
                filled = 0
                while filled < info.size:
                    n = f.readinto(view[filled:])
                    if not n:
                        break
                    filled += n
        except FileNotFoundError:
            raise TFCheckpointError(f"{path}: missing data file ({where})") from None
        except OSError as e:
            raise TFCheckpointError(f"{path}: cannot read ({where}): {e}") from None
        if filled != info.size:
            raise TFCheckpointError(
                f"{path}: data file is truncated: {where} needs bytes {info.offset}.."
                f"{info.offset + info.size}, the file ends at {info.offset + filled}"
            )
        return buf

    def _strings(
        self, raw: np.ndarray, count: int, info: TensorInfo, where: str, verify: bool
    ) -> np.ndarray:
        """Decode TensorFlow's string-tensor layout: varint64 lengths, the masked CRC-32C of
        the lengths, then the bytes of every element. The entry's CRC-32C covers the lengths
        (each as a uint32, or a uint64 above 2**32-1), the length CRC and the bytes."""
        out = np.empty(count, dtype=object)
        if count == 0:
            return out.reshape(info.shape)
        data = raw.tobytes()
        end = "big" if self._header.big_endian else "little"
        try:
            pos = 0
            lengths = []
            for _ in range(count):
                length, pos = _varint(data, pos)
                lengths.append(length)
        except _Corrupt as e:
            raise TFCheckpointError(f"{where}: bad string tensor ({e})") from None
        if pos + 4 + sum(lengths) != len(data):
            raise TFCheckpointError(
                f"{where}: bad string tensor: {count} strings of {sum(lengths)} bytes do not "
                f"fill its {len(data)} bytes"
            )
        if verify:
            packed = b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, end) for n in lengths)
            crc = crc32c(packed)
            if crc != _unmask(int.from_bytes(data[pos : pos + 4], end)):
                raise TFCheckpointError(f"{where}: string lengths fail their CRC-32C")
            if crc32c(memoryview(data)[pos:], crc) != _unmask(info.crc32c):
                raise self._crc_error(info)
        pos += 4
        for i, n in enumerate(lengths):
            out[i] = data[pos : pos + n]
            pos += n
        return out.reshape(info.shape)


def find_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """The prefixes of every V2 checkpoint below ``folder``: each ``*.index`` whose data files
    (``.data-00000-of-0000N`` ... for some N) are all present, sorted."""
    found = []
    for index in Path(folder).rglob("*.index"):
        if not index.is_file():
            continue
        prefix = index.with_name(index.name[: -len(".index")])
        shards: dict[int, set[int]] = {}
        for sibling in index.parent.iterdir():
            m = _DATA_RE.fullmatch(sibling.name)
            if m and m.group(1) == prefix.name:
                shards.setdefault(int(m.group(3)), set()).add(int(m.group(2)))
        if any(have == set(range(total)) for total, have in shards.items()):
            found.append(prefix)
    return sorted(found)
