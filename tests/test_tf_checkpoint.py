"""avscene.release.tf_checkpoint: reading TensorFlow V2 checkpoints without TensorFlow.

Most tests build checkpoints with a small writer below (LevelDB table + bundle protos encoded
by hand), so they run without TensorFlow; the tests marked by ``tf_ckpt`` write real ones with
``tf.compat.v1.train.Saver`` (what the authors' release used) and need TensorFlow.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from avscene.release import tf_checkpoint as tfc
from avscene.release.tf_checkpoint import (
    TFCheckpoint,
    TFCheckpointError,
    TensorInfo,
    crc32c,
    find_checkpoints,
)

# --------------------------------------------------------------------------------------------
# A minimal bundle writer, following tensor_bundle.cc / table_builder.cc / block_builder.cc.

_ENUM = {
    "float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6, "string": 7,
    "complex64": 8, "int64": 9, "bool": 10, "bfloat16": 14, "uint16": 17, "complex128": 18,
    "float16": 19, "uint32": 22, "uint64": 23,
}


class BF16:
    """A bfloat16 tensor for the writer, given as its raw uint16 bits."""

    def __init__(self, bits: np.ndarray):
        self.bits = np.asarray(bits, dtype=np.uint16)


def _mask(crc: int) -> int:  # the formula from TensorFlow's crc32c.h
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _uvarint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _pb_varint(field: int, v: int) -> bytes:
    return _uvarint(field << 3) + _uvarint(v)


def _pb_bytes(field: int, b: bytes) -> bytes:
    return _uvarint(field << 3 | 2) + _uvarint(len(b)) + b


def _pb_fixed32(field: int, v: int) -> bytes:
    return _uvarint(field << 3 | 5) + struct.pack("<I", v)


def header_proto(num_shards=1, big_endian=False, producer=1, min_consumer=0) -> bytes:
    version = _pb_varint(1, producer) + (_pb_varint(2, min_consumer) if min_consumer else b"")
    return (_pb_varint(1, num_shards) + (_pb_varint(2, 1) if big_endian else b"")
            + _pb_bytes(3, version))


def entry_proto(dtype, shape, shard=0, offset=0, size=0, crc=0, slices=0) -> bytes:
    shp = b"".join(_pb_bytes(2, _pb_varint(1, d) if d else b"") for d in shape)
    out = _pb_varint(1, dtype) + _pb_bytes(2, shp)
    out += (_pb_varint(3, shard) if shard else b"") + (_pb_varint(4, offset) if offset else b"")
    out += (_pb_varint(5, size) if size else b"") + _pb_fixed32(6, crc)
    return out + b"".join(_pb_bytes(7, b"") for _ in range(slices))


def _block(items, restart_interval) -> bytes:
    out, restarts, last = bytearray(), [], b""
    for i, (k, v) in enumerate(items):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(k), len(last)) and k[shared] == last[shared]:
                shared += 1
        out += _uvarint(shared) + _uvarint(len(k) - shared) + _uvarint(len(v)) + k[shared:] + v
        last = k
    restarts = restarts or [0]
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack(
        "<I", len(restarts))


def sstable(items, block_size=262144, restart_interval=16, kind=0) -> bytes:
    out, index = bytearray(), []

    def write(contents):
        off = len(out)
        trailer = bytes([kind])
        out.extend(contents + trailer + struct.pack("<I", _mask(crc32c(contents + trailer))))
        return _uvarint(off) + _uvarint(len(contents))

    pending, size = [], 0
    for k, v in items:
        pending.append((k, v))
        size += len(k) + len(v) + 3
        if size >= block_size:
            index.append((k, write(_block(pending, restart_interval))))
            pending, size = [], 0
    if pending:
        index.append((pending[-1][0], write(_block(pending, restart_interval))))
    meta = write(_block([], restart_interval))
    idx = write(_block(index, 1))
    return bytes(out) + (meta + idx).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)


def _string_bytes(strings, big_endian) -> tuple[bytes, int]:
    end = "big" if big_endian else "little"
    lengths = b"".join(_uvarint(len(s)) for s in strings)
    crc = crc32c(b"".join(len(s).to_bytes(4, end) for s in strings))
    length_crc = _mask(crc).to_bytes(4, end)
    body = b"".join(strings)
    return lengths + length_crc + body, crc32c(body, crc32c(length_crc, crc))


def write_bundle(prefix, tensors, *, num_shards=1, shard_of=None, big_endian=False,
                 block_size=262144, restart_interval=16, extra=None, header=None) -> Path:
    """Write ``prefix.index`` and its data files: ``tensors`` maps a name to a numpy array,
    a :class:`BF16`, or an object array of bytes (a string tensor). ``extra`` adds raw index
    entries (key bytes -> value bytes); ``header`` replaces the header proto."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    order = ">" if big_endian else "<"
    shards = [bytearray() for _ in range(num_shards)]
    items = {b"": header if header is not None else header_proto(num_shards, big_endian)}
    for name, value in tensors.items():
        shard = shard_of(name) if shard_of else 0
        if not isinstance(value, BF16):
            value = np.asarray(value)  # numpy scalars cannot be big-endian
        if isinstance(value, BF16):
            dtype, shape = _ENUM["bfloat16"], value.bits.shape
            raw = value.bits.astype(order + "u2").tobytes()
            crc = crc32c(raw)
        elif value.dtype == object:
            dtype, shape = _ENUM["string"], value.shape
            raw, crc = _string_bytes(list(value.reshape(-1)), big_endian)
        else:
            dtype, shape = _ENUM[value.dtype.name], value.shape
            raw = value.astype(value.dtype.newbyteorder(order)).tobytes()
            crc = crc32c(raw)
        items[name.encode()] = entry_proto(dtype, shape, shard, len(shards[shard]), len(raw),
                                           _mask(crc))
        shards[shard] += raw
    items.update(extra or {})
    (prefix.parent / (prefix.name + ".index")).write_bytes(
        sstable(sorted(items.items()), block_size, restart_interval))
    for i, data in enumerate(shards):
        (prefix.parent / f"{prefix.name}.data-{i:05d}-of-{num_shards:05d}").write_bytes(data)
    return prefix


def _specials(dtype) -> np.ndarray:
    """Values that catch byte-order, sign and NaN-payload mistakes."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        v = np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e-30], dt)
        if dt.itemsize == 4:  # a NaN with a payload, a negative subnormal
            v = np.concatenate([v, np.array([0x7FC00001, 0x80000001], np.uint32).view(dt)])
        return v
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.array([info.min, info.max, 0, 1, info.max // 3], dt)
    if dt.kind == "c":
        return np.array([1 + 2j, -0.0 - 3.5j, complex(np.inf, np.nan)], dt)
    return np.array([True, False, True, True], dt)


ALL_NUMERIC = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8",
               "uint16", "uint32", "uint64", "bool", "complex64", "complex128"]


def _sample(rng) -> dict:
    t = {f"dtype/{d}": _specials(d) for d in ALL_NUMERIC}
    t["dtype/bfloat16"] = BF16(np.array([0x3FC0, 0xBF80, 0x7FC1, 0xFF80, 0x8000, 1], np.uint16))
    t["im/conv1/BatchNorm/moving_mean"] = rng.standard_normal(64).astype(np.float32)
    t["im/conv1/weights"] = rng.standard_normal((3, 3, 3, 4, 8)).astype(np.float32)  # 5-D
    t["scalar/f"] = np.array(3.5, np.float32)
    t["scalar/i"] = np.array(-7, np.int64)
    t["empty/f"] = np.zeros((0, 3), np.float32)
    t["empty/s"] = np.empty((2, 0), dtype=object)
    t["strings"] = np.array([[b"abc", b""], [b"\x00\xff", b"x" * 300]], dtype=object)
    t["step"] = np.array(650000, np.int64)
    return t


def _same_bits(a: np.ndarray, b) -> bool:
    if isinstance(b, BF16):
        return a.dtype == np.float32 and np.array_equal(
            a.view(np.uint32), b.bits.astype(np.uint32) << 16)
    b = np.asarray(b)
    if b.dtype == object:
        return a.dtype == object and a.shape == b.shape and a.tolist() == b.tolist()
    return (a.dtype == b.dtype and a.shape == b.shape
            and a.tobytes() == b.tobytes())


def _corrupt(path: Path, pos: int, xor: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= xor
    path.write_bytes(bytes(data))


@pytest.fixture
def bundle(tmp_path):
    tensors = _sample(np.random.default_rng(0))
    return write_bundle(tmp_path / "ckpt" / "net.tf-650000", tensors), tensors


# --------------------------------------------------------------------------------------------
# CRC-32C


KNOWN = [  # RFC 3720 B.4, plus the classic check value
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


@pytest.mark.parametrize("data,want", KNOWN)
def test_crc32c_known_values(data, want):
    assert crc32c(data) == want
    assert crc32c(np.frombuffer(data, np.uint8)) == want
    assert crc32c(memoryview(bytearray(data))) == want  # writable buffers too
    half = len(data) // 2
    assert crc32c(data[half:], crc32c(data[:half])) == want


def test_mask_roundtrip():
    for crc in [0, 1, 0xE3069283, 0xFFFFFFFF, 0x12345678]:
        assert tfc._mask(crc) == _mask(crc)
        assert tfc._unmask(tfc._mask(crc)) == crc


# --------------------------------------------------------------------------------------------
# Reading (hand-written bundles)


def test_roundtrip_all_dtypes(bundle):
    prefix, tensors = bundle
    ckpt = TFCheckpoint(prefix)
    assert ckpt.names() == sorted(tensors) == list(ckpt) and len(ckpt) == len(tensors)
    assert "im/conv1/weights" in ckpt and "nope" not in ckpt
    for name, value in tensors.items():
        info = ckpt.tensors()[name]
        want_dtype = ("bfloat16" if isinstance(value, BF16)
                      else "string" if value.dtype == object else value.dtype.name)
        want_shape = value.bits.shape if isinstance(value, BF16) else value.shape
        assert (info.name, info.dtype, info.shape, info.shard) == (name, want_dtype,
                                                                   want_shape, 0)
        got = ckpt.read(name)
        assert _same_bits(got, value), name
        assert got.flags.writeable and got.dtype.isnative
    assert ckpt.read("dtype/bfloat16")[:2].tolist() == [1.5, -1.0]


def test_opens_by_prefix_index_or_data_path(bundle, tmp_path):
    prefix, _ = bundle
    for arg in [prefix, str(prefix), f"{prefix}.index", f"{prefix}.data-00000-of-00001"]:
        assert TFCheckpoint(arg).prefix == prefix
    assert repr(TFCheckpoint(prefix)).startswith("TFCheckpoint(")
    with pytest.raises(TFCheckpointError, match="is a folder.*net.tf-650000"):
        TFCheckpoint(prefix.parent)
    with pytest.raises(TFCheckpointError, match=r"other\.index: no such file"):
        TFCheckpoint(tmp_path / "other")


def test_many_entries_several_blocks_and_restarts(tmp_path):
    rng = np.random.default_rng(3)
    tensors = {f"net/layer{i:03d}/{kind}": rng.standard_normal(i % 7 + 1).astype(np.float32)
               for i in range(150) for kind in ("weights", "biases")}
    prefix = write_bundle(tmp_path / "m", tensors, block_size=1024, restart_interval=16)
    index = Path(f"{prefix}.index").read_bytes()
    blocks = tfc._table_data_blocks(index)
    assert len(blocks) > 5
    off, size = blocks[0]
    assert int.from_bytes(index[off + size - 4: off + size], "little") > 1  # restart points
    ckpt = TFCheckpoint(prefix)
    assert ckpt.names() == sorted(tensors)
    for name, value in tensors.items():
        assert _same_bits(ckpt.read(name), value)


def test_big_endian_bundle(tmp_path):
    tensors = _sample(np.random.default_rng(4))
    ckpt = TFCheckpoint(write_bundle(tmp_path / "be", tensors, big_endian=True))
    for name, value in tensors.items():
        assert _same_bits(ckpt.read(name), value), name


def test_sharded_bundle(tmp_path):
    tensors = {f"v{i}": np.arange(i + 1, dtype=np.int32) * i for i in range(6)}
    prefix = write_bundle(tmp_path / "sh", tensors, num_shards=3,
                          shard_of=lambda n: int(n[1:]) % 3)
    ckpt = TFCheckpoint(prefix)
    assert ckpt.num_shards == 3 and ckpt.tensors()["v4"].shard == 1
    assert ckpt.data_path(2).name == "sh.data-00002-of-00003"
    for name, value in tensors.items():
        assert _same_bits(ckpt.read(name), value)
    Path(f"{prefix}.data-00002-of-00003").unlink()
    with pytest.raises(TFCheckpointError, match=r"sh\.data-00002-of-00003: missing data file"):
        TFCheckpoint(prefix)


def test_reading_is_lazy(bundle, monkeypatch):
    prefix, tensors = bundle
    opened, read = [], []
    real_open = TFCheckpoint._open_shard

    class Counting:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def seek(self, pos):
            return self.f.seek(pos)

        def readinto(self, buf):
            n = self.f.readinto(buf)
            read.append(n)
            return n

    def counting_open(self, shard):
        opened.append(shard)
        return Counting(real_open(self, shard))

    monkeypatch.setattr(TFCheckpoint, "_open_shard", counting_open)
    ckpt = TFCheckpoint(prefix)
    ckpt.tensors()
    assert opened == [] and read == []  # listing reads no tensor data
    info = ckpt.tensors()["im/conv1/weights"]
    ckpt.read("im/conv1/weights")
    assert opened == [0] and sum(read) == info.size == 3 * 3 * 3 * 4 * 8 * 4


def test_find_checkpoints(tmp_path):
    t = {"a": np.zeros(2, np.float32)}
    want = [write_bundle(tmp_path / "runs" / "b" / "net.tf-2", t),
            write_bundle(tmp_path / "runs" / "a" / "net.tf-1", t),
            write_bundle(tmp_path / "runs" / "a" / "net.tf-10", t),
            write_bundle(tmp_path / "s" / "x", t, num_shards=2)]
    broken = write_bundle(tmp_path / "runs" / "c" / "net.tf-3", t)
    Path(f"{broken}.data-00000-of-00001").unlink()
    (tmp_path / "runs" / "c" / "net.tf-3.data-00000-of-00002").write_bytes(b"")  # 1 of 2
    (tmp_path / "runs" / "other.index.txt").write_text("not a checkpoint")
    assert find_checkpoints(tmp_path) == sorted(want)
    assert find_checkpoints(tmp_path / "runs" / "a") == sorted(want[1:3])
    assert find_checkpoints(tmp_path / "nothing") == []


# --------------------------------------------------------------------------------------------
# Errors: each names the file and the problem


def _index(prefix) -> Path:
    return Path(f"{prefix}.index")


def test_truncated_index(bundle):
    prefix, _ = bundle
    index = _index(prefix)
    data = index.read_bytes()
    index.write_bytes(data[:30])
    with pytest.raises(TFCheckpointError, match=r"net\.tf-650000\.index: .*shorter than the "
                                                 r"48-byte table footer"):
        TFCheckpoint(prefix)
    index.write_bytes(data[: len(data) // 2])  # the footer is gone: its magic is not there
    with pytest.raises(TFCheckpointError, match=r"net\.tf-650000\.index: bad magic"):
        TFCheckpoint(prefix)
    # A footer whose block handles point past the end of what is left.
    index.write_bytes(data[: len(data) // 2] + data[-48:])
    with pytest.raises(TFCheckpointError, match=r"\.index: .*runs past the end.*truncated"):
        TFCheckpoint(prefix)


def test_bad_magic(bundle):
    prefix, _ = bundle
    _corrupt(_index(prefix), -1)
    with pytest.raises(TFCheckpointError, match=r"\.index: bad magic number .*not a TensorFlow"):
        TFCheckpoint(prefix)


def test_corrupt_index_block(bundle):
    prefix, _ = bundle
    _corrupt(_index(prefix), 40)  # inside the first data block
    with pytest.raises(TFCheckpointError, match=r"\.index: data block 0 .*checksum mismatch"):
        TFCheckpoint(prefix)


def test_snappy_block_is_refused(tmp_path):
    prefix = tmp_path / "snappy"
    write_bundle(prefix, {"a": np.zeros(3, np.float32)})
    items = [(b"", header_proto()), (b"a", entry_proto(1, (3,), size=12))]
    _index(prefix).write_bytes(sstable(items, kind=1))
    with pytest.raises(TFCheckpointError, match=r"snappy\.index: .*snappy-compressed"):
        TFCheckpoint(prefix)


def test_missing_data_file(bundle):
    prefix, _ = bundle
    Path(f"{prefix}.data-00000-of-00001").unlink()
    with pytest.raises(TFCheckpointError,
                       match=r"net\.tf-650000\.data-00000-of-00001: missing data file"):
        TFCheckpoint(prefix)


def test_wrong_crc_and_truncated_data(bundle):
    prefix, tensors = bundle
    ckpt = TFCheckpoint(prefix)
    info = ckpt.tensors()["im/conv1/weights"]
    data_path = Path(f"{prefix}.data-00000-of-00001")
    _corrupt(data_path, info.offset + 5, 0x40)
    with pytest.raises(TFCheckpointError, match=r"data-00000-of-00001: tensor "
                                                r"'im/conv1/weights' .*CRC-32C mismatch"):
        ckpt.read("im/conv1/weights")
    assert not _same_bits(ckpt.read("im/conv1/weights", verify=False),
                          tensors["im/conv1/weights"])
    assert _same_bits(ckpt.read("im/conv1/BatchNorm/moving_mean"),
                      tensors["im/conv1/BatchNorm/moving_mean"])  # others unaffected
    s = ckpt.tensors()["strings"]
    _corrupt(data_path, s.offset + s.size - 1)
    with pytest.raises(TFCheckpointError, match=r"tensor 'strings' .*CRC-32C mismatch"):
        ckpt.read("strings")
    _corrupt(data_path, s.offset)  # a length
    with pytest.raises(TFCheckpointError, match=r"'strings'.*(do not fill|fail their CRC)"):
        ckpt.read("strings")
    last = max(ckpt.tensors().values(), key=lambda i: i.offset + i.size)
    data_path.write_bytes(data_path.read_bytes()[: last.offset + 1])
    with pytest.raises(TFCheckpointError, match=rf"data-00000-of-00001: data file is truncated:"
                                                rf".*'{last.name}'"):
        ckpt.read(last.name)


def test_entry_problems(tmp_path):
    extra = {
        b"sizebad": entry_proto(1, (4,), size=12),
        b"variant": entry_proto(21, (2,), size=8),
        b"weird": entry_proto(99, (2,), size=8),
        b"part": entry_proto(1, (10, 4), slices=2),
        b"\x00part\x00\x01\x01\x02\x80\x85\x80\x84": entry_proto(1, (5, 4), size=80),
    }
    ckpt = TFCheckpoint(write_bundle(tmp_path / "e", {"ok": np.ones(2, np.int8)}, extra=extra))
    assert ckpt.names() == ["ok", "part", "sizebad", "variant", "weird"]  # slice keys hidden
    infos = ckpt.tensors()
    assert infos["part"] == TensorInfo("part", "float32", (10, 4), 0, 0, 0, 0, num_slices=2)
    assert (infos["variant"].dtype, infos["weird"].dtype) == ("variant", "dtype_enum_99")
    for name, match in [("sizebad", r"size mismatch: the index says 12 bytes.*needs 16"),
                        ("variant", "dtype variant, which cannot be read"),
                        ("weird", "dtype dtype_enum_99, which cannot be read"),
                        ("part", "partitioned variable stored as 2 slices.*not supported")]:
        with pytest.raises(TFCheckpointError, match=rf"e\.index: tensor '{name}'.*{match}"):
            ckpt.read(name)
    with pytest.raises(TFCheckpointError, match=r"e\.index: no tensor named 'ok2'.*'ok'"):
        ckpt.read("ok2")


@pytest.mark.parametrize("header,match", [
    (None, "no bundle header entry"),
    (header_proto(min_consumer=2, producer=2), "newer than this reader"),
    (header_proto(num_shards=0), "num_shards=0"),
    (b"\x08", "truncated varint"),
])
def test_bad_header(tmp_path, header, match):
    prefix = tmp_path / "h"
    write_bundle(prefix, {"a": np.zeros(1, np.float32)})
    items = [(b"a", entry_proto(1, (1,), size=4))]
    if header is not None:
        items.insert(0, (b"", header))
    _index(prefix).write_bytes(sstable(items))
    with pytest.raises(TFCheckpointError, match=rf"h\.index: .*{match}"):
        TFCheckpoint(prefix)


def test_shard_out_of_range(tmp_path):
    extra = {b"b": entry_proto(1, (1,), shard=3, size=4)}
    with pytest.raises(TFCheckpointError, match=r"entry 'b' is in shard 3.*has 1"):
        TFCheckpoint(write_bundle(tmp_path / "s", {"a": np.zeros(1, np.float32)}, extra=extra))


# --------------------------------------------------------------------------------------------
# Real checkpoints written by TensorFlow's Saver (V2), as the release's were.

TF_DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
             "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128", "string"]
LONG = 2200  # characters per key for the bulk variables, so that the index spans blocks


@pytest.fixture(scope="module")
def tf_saved(tmp_path_factory):
    """A checkpoint written by tf.compat.v1.train.Saver in graph mode, and the values that the
    session held when it saved."""
    tf = pytest.importorskip("tensorflow")
    prefix = tmp_path_factory.mktemp("tf") / "net.tf"
    rng = np.random.default_rng(5)
    graph = tf.Graph()
    with graph.as_default():
        var_list = {}

        def var(key, value, dtype=None):
            var_list[key] = tf.compat.v1.Variable(value, dtype=dtype, name=f"v{len(var_list)}",
                                                  use_resource=False)

        for d in TF_DTYPES:
            if d == "string":
                var("dtype/string", np.array([b"abc", b"", b"\x00\xff" * 100]))
            elif d == "bfloat16":
                var("dtype/bfloat16", rng.standard_normal((4, 5)).astype(np.float32),
                    tf.bfloat16)
            else:
                var(f"dtype/{d}", _specials(d))
        var("im/conv1/BatchNorm/moving_mean", rng.standard_normal(64).astype(np.float32))
        var("im/conv1/weights", rng.standard_normal((3, 3, 3, 4, 8)).astype(np.float32))
        var("scalar", np.float64(2.5))
        var("empty", np.zeros((0, 7), np.float32))
        var("global_step", np.int64(650000))
        for i in range(300):
            var(f"bulk/{i:03d}/" + "w" * LONG, rng.standard_normal(i % 5 + 1).astype(np.float32))
        part = tf.compat.v1.get_variable(
            "part", shape=(10, 4), partitioner=tf.compat.v1.fixed_size_partitioner(2))
        saver = tf.compat.v1.train.Saver(var_list={**var_list, "part": part},
                                         write_version=tf.compat.v1.train.SaverDef.V2)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            path = saver.save(sess, str(prefix), global_step=650000, write_meta_graph=False)
            values = sess.run(var_list)
    reader = tf.train.load_checkpoint(path)
    tf_shapes = reader.get_variable_to_shape_map()
    tf_dtypes = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
    return Path(path), values, tf_shapes, tf_dtypes


def _same_as_tf(got: np.ndarray, want) -> bool:
    want = np.asarray(want)
    if want.dtype.name == "bfloat16":
        return got.dtype == np.float32 and np.array_equal(
            got.view(np.uint32), want.view(np.uint16).astype(np.uint32) << 16)
    if want.dtype == object:
        return got.shape == want.shape and got.tolist() == want.tolist()
    return got.dtype == want.dtype and got.shape == want.shape and (
        got.tobytes() == want.tobytes())


def test_tf_saver_checkpoint(tf_saved):
    path, values, tf_shapes, tf_dtypes = tf_saved
    ckpt = TFCheckpoint(path)
    assert path.name == "net.tf-650000"
    assert set(ckpt.names()) == set(tf_shapes) == set(values) | {"part"}
    for name, info in ckpt.tensors().items():
        assert list(info.shape) == tf_shapes[name], name
        assert info.dtype == tf_dtypes[name], name
    for name, want in values.items():
        assert _same_as_tf(ckpt.read(name), want), name
    assert ckpt.tensors()["part"].num_slices == 2
    with pytest.raises(TFCheckpointError, match="'part' is a partitioned variable"):
        ckpt.read("part")
    index = Path(f"{path}.index").read_bytes()
    assert len(tfc._table_data_blocks(index)) >= 3  # the 300 long keys span several blocks
    assert find_checkpoints(path.parent) == [path]


def test_tf_reads_the_test_writer(tmp_path):
    """Cross-check of the hand-written bundles used above: TensorFlow reads them back."""
    tf = pytest.importorskip("tensorflow")
    tensors = _sample(np.random.default_rng(6))
    prefix = write_bundle(tmp_path / "w", tensors, block_size=256)
    reader = tf.train.load_checkpoint(str(prefix))
    for name, value in tensors.items():
        got = reader.get_tensor(name)
        if isinstance(value, BF16):
            assert np.array_equal(np.asarray(got).view(np.uint16), value.bits)
        else:
            assert _same_bits(np.asarray(got) if value.dtype != object
                              else np.asarray(got, dtype=object), value), name
