"""MMdnn 0.3.1 IR schema as Python protobuf classes, built without protoc.

The schema mirrors mmdnn/conversion/common/IR/graph.proto (proto3) field for
field; it is assembled as a FileDescriptorProto at import time so the tests
need neither protoc nor a .proto file. The package name differs from MMdnn's,
which does not matter on the wire.

Also provides a tiny IR graph + weights identical to what MMdnn 0.3.1's Keras
parser (`mmtoir -f keras`, Keras 2.2.4) writes for

    Input(8, 8, 3) -> Conv2D(4, 3, padding="same", activation="relu")
    -> MaxPooling2D(2) -> Flatten -> Dense(5, activation="softmax")
"""

import pickle
import pickletools

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import enum_type_wrapper

PACKAGE = "mmdnn_ir_test"

_F = descriptor_pb2.FieldDescriptorProto

DATA_TYPES = [
    "DT_UNDEFINED",
    "DT_INT8",
    "DT_INT16",
    "DT_INT32",
    "DT_INT64",
    "DT_UINT8",
    "DT_UINT16",
    "DT_UINT32",
    "DT_UINT64",
    "DT_FLOAT16",
    "DT_FLOAT32",
    "DT_FLOAT64",
    "DT_COMPLEX64",
    "DT_COMPLEX128",
    "DT_BOOL",
    "DT_STRING",
]


def _ref(name):
    return "." + PACKAGE + "." + name


def _field(msg, name, number, ftype, *, repeated=False, type_name=None,
           oneof_index=None, packed=False):
    f = msg.field.add()
    f.name = name
    f.number = number
    f.type = ftype
    f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name is not None:
        f.type_name = _ref(type_name)
    if oneof_index is not None:
        f.oneof_index = oneof_index
    if packed:
        f.options.packed = True
    return f


def _build_file():
    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.name = PACKAGE + "/graph.proto"
    fdp.package = PACKAGE
    fdp.syntax = "proto3"

    enum = fdp.enum_type.add()
    enum.name = "DataType"
    for number, name in enumerate(DATA_TYPES):
        enum.value.add(name=name, number=number)

    # GraphDef
    m = fdp.message_type.add(name="GraphDef")
    _field(m, "node", 1, _F.TYPE_MESSAGE, repeated=True, type_name="NodeDef")
    _field(m, "version", 2, _F.TYPE_INT32)

    # NodeDef, with map<string, AttrValue> attr = 4
    m = fdp.message_type.add(name="NodeDef")
    _field(m, "name", 1, _F.TYPE_STRING)
    _field(m, "op", 2, _F.TYPE_STRING)
    _field(m, "input", 3, _F.TYPE_STRING, repeated=True)
    _field(m, "attr", 4, _F.TYPE_MESSAGE, repeated=True,
           type_name="NodeDef.AttrEntry")
    entry = m.nested_type.add(name="AttrEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name="AttrValue")

    # AttrValue
    m = fdp.message_type.add(name="AttrValue")
    lv = m.nested_type.add(name="ListValue")
    _field(lv, "s", 2, _F.TYPE_BYTES, repeated=True)
    _field(lv, "i", 3, _F.TYPE_INT64, repeated=True, packed=True)
    _field(lv, "f", 4, _F.TYPE_FLOAT, repeated=True, packed=True)
    _field(lv, "b", 5, _F.TYPE_BOOL, repeated=True, packed=True)
    _field(lv, "type", 6, _F.TYPE_ENUM, repeated=True, packed=True,
           type_name="DataType")
    _field(lv, "shape", 7, _F.TYPE_MESSAGE, repeated=True,
           type_name="TensorShape")
    _field(lv, "tensor", 8, _F.TYPE_MESSAGE, repeated=True,
           type_name="LiteralTensor")
    m.oneof_decl.add(name="value")
    _field(m, "list", 1, _F.TYPE_MESSAGE, type_name="AttrValue.ListValue",
           oneof_index=0)
    _field(m, "s", 2, _F.TYPE_BYTES, oneof_index=0)
    _field(m, "i", 3, _F.TYPE_INT64, oneof_index=0)
    _field(m, "f", 4, _F.TYPE_FLOAT, oneof_index=0)
    _field(m, "b", 5, _F.TYPE_BOOL, oneof_index=0)
    _field(m, "type", 6, _F.TYPE_ENUM, type_name="DataType", oneof_index=0)
    _field(m, "shape", 7, _F.TYPE_MESSAGE, type_name="TensorShape",
           oneof_index=0)
    _field(m, "tensor", 8, _F.TYPE_MESSAGE, type_name="LiteralTensor",
           oneof_index=0)

    # TensorShape
    m = fdp.message_type.add(name="TensorShape")
    dim = m.nested_type.add(name="Dim")
    _field(dim, "size", 1, _F.TYPE_INT64)
    _field(dim, "name", 2, _F.TYPE_STRING)
    _field(m, "dim", 2, _F.TYPE_MESSAGE, repeated=True,
           type_name="TensorShape.Dim")
    _field(m, "unknown_rank", 3, _F.TYPE_BOOL)

    # LiteralTensor
    m = fdp.message_type.add(name="LiteralTensor")
    _field(m, "dtype", 1, _F.TYPE_ENUM, type_name="DataType")
    _field(m, "tensor_shape", 2, _F.TYPE_MESSAGE, type_name="TensorShape")
    _field(m, "version_number", 3, _F.TYPE_INT32)
    _field(m, "tensor_content", 4, _F.TYPE_BYTES)
    _field(m, "int_val", 5, _F.TYPE_INT32, repeated=True, packed=True)
    _field(m, "uint_val", 6, _F.TYPE_INT32, repeated=True, packed=True)
    _field(m, "int64_val", 7, _F.TYPE_INT64, repeated=True, packed=True)
    # MMdnn's graph.proto says int64 here; uint64 is the same varint on the
    # wire and matches this project's proto/ir/graph.proto.
    _field(m, "uint64_val", 8, _F.TYPE_UINT64, repeated=True, packed=True)
    _field(m, "float_val", 9, _F.TYPE_FLOAT, repeated=True, packed=True)
    _field(m, "double_val", 10, _F.TYPE_DOUBLE, repeated=True, packed=True)
    _field(m, "bool_val", 11, _F.TYPE_BOOL, repeated=True, packed=True)
    _field(m, "string_val", 12, _F.TYPE_BYTES, repeated=True)
    return fdp


FILE_DESCRIPTOR_PROTO = _build_file()
POOL = descriptor_pool.DescriptorPool()
POOL.Add(FILE_DESCRIPTOR_PROTO)


def _message(name):
    return message_factory.GetMessageClass(
        POOL.FindMessageTypeByName(PACKAGE + "." + name))


GraphDef = _message("GraphDef")
NodeDef = _message("NodeDef")
AttrValue = _message("AttrValue")
TensorShape = _message("TensorShape")
LiteralTensor = _message("LiteralTensor")

# Like generated code: DataType.DT_FLOAT32 == 10, DataType.Name(10),
# DataType.Value("DT_FLOAT32"), plus module constants DT_FLOAT32 etc.
DataType = enum_type_wrapper.EnumTypeWrapper(
    POOL.FindEnumTypeByName(PACKAGE + ".DataType"))
globals().update(DataType.items())

__all__ = [
    "GraphDef", "NodeDef", "AttrValue", "TensorShape", "LiteralTensor",
    "DataType", *DATA_TYPES,
    "make_shape", "make_mmdnn_keras_like_ir", "make_mmdnn_weights",
    "save_mmdnn_npy", "load_mmdnn_npy",
]


# ---------------------------------------------------------------------------
# Helpers mirroring mmdnn.conversion.common.utils


def make_shape(dims):
    """TensorShape with the given dim sizes (-1 = unknown)."""
    shape = TensorShape()
    for size in dims:
        shape.dim.add().size = size
    return shape


def _set_output_shape(node, dims):
    # Keras2Parser._set_output_shape
    node.attr["_output_shapes"].list.shape.extend([make_shape(dims)])


def _assign(node, values):
    # utils.assign_IRnode_values / assign_attr_value, for the types used here
    for name, val in values.items():
        attr = node.attr[name]
        if isinstance(val, bool):
            attr.b = val
        elif isinstance(val, int):
            attr.i = val
        elif isinstance(val, float):
            attr.f = val
        elif isinstance(val, (str, bytes)):
            attr.s = val.encode() if isinstance(val, str) else val
        elif isinstance(val, list):
            attr.list.i.extend(val)
        else:
            raise TypeError(f"unsupported attr value {val!r}")


def _add_node(graph, name, op, inputs=()):
    node = graph.node.add()
    node.name = name
    node.op = op
    node.input.extend(inputs)
    return node


def make_mmdnn_keras_like_ir():
    """The GraphDef `mmtoir -f keras` (MMdnn 0.3.1, Keras 2.2.4) writes for the
    model in the module docstring.

    Checked against real MMdnn 0.3.1 output: only DataInput carries `dtype`;
    Conv has no `group` and Pool no `global_pooling` (MMdnn sets that only for
    global pooling); no node has `data_format`; `version` is left at 0.
    """
    g = GraphDef()

    n = _add_node(g, "input_1", "DataInput")
    n.attr["dtype"].type = DataType.DT_FLOAT32
    _set_output_shape(n, [-1, 8, 8, 3])
    n.attr["shape"].shape.CopyFrom(make_shape([-1, 8, 8, 3]))

    n = _add_node(g, "conv2d_1", "Conv", ["input_1"])
    _set_output_shape(n, [-1, 8, 8, 4])
    # Keras "same": pads = [begin N,H,W,C, end N,H,W,C]
    _assign(n, {"auto_pad": "SAME_LOWER", "pads": [0, 1, 1, 0, 0, 1, 1, 0]})
    _assign(n, {
        "kernel_shape": [3, 3, 3, 4],
        "use_bias": True,
        "strides": [1, 1, 1, 1],
        "dilations": [1, 1, 1, 1],
    })

    n = _add_node(g, "conv2d_1_activation", "Relu", ["conv2d_1"])
    _set_output_shape(n, [-1, 8, 8, 4])

    n = _add_node(g, "max_pooling2d_1", "Pool", ["conv2d_1_activation"])
    _set_output_shape(n, [-1, 4, 4, 4])
    _assign(n, {"auto_pad": "VALID", "pads": [0] * 8})
    _assign(n, {
        "pooling_type": "MAX",
        "strides": [1, 2, 2, 1],
        "kernel_shape": [1, 2, 2, 1],
    })

    n = _add_node(g, "flatten_1", "Flatten", ["max_pooling2d_1"])
    _set_output_shape(n, [-1, 64])

    n = _add_node(g, "dense_1", "FullyConnected", ["flatten_1"])
    _set_output_shape(n, [-1, 5])
    n.attr["units"].i = 5
    n.attr["use_bias"].b = True

    n = _add_node(g, "dense_1_activation", "Softmax", ["dense_1"])
    _set_output_shape(n, [-1, 5])
    return g


def make_mmdnn_weights(rng):
    """Weights dict as MMdnn pickles it: {layer: {key: float32 ndarray}}.
    Keras layouts: conv HWIO, dense [in, out]."""
    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return {
        "conv2d_1": {"weights": w(3, 3, 3, 4), "bias": w(4)},
        "dense_1": {"weights": w(64, 5) * np.float32(0.1), "bias": w(5)},
    }


def save_mmdnn_npy(path, d, legacy=False):
    """Write `d` as MMdnn does: np.save of a dict, i.e. a pickled 0-d object
    array in an .npy file (format 1.0).

    With numpy 2 that pickle (protocol 4) names `numpy._core.multiarray`,
    which numpy < 1.26 (MMdnn's own stack) cannot load. legacy=True instead
    writes protocol 3 with `numpy.core.multiarray`, byte-identical to what
    MMdnn 0.3.1 writes under numpy 1.x.
    """
    if not legacy:
        np.save(path, d)
        return
    arr = np.empty((), dtype=object)
    arr[()] = d
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, np.lib.format.header_data_from_array_1_0(arr))
        f.write(_numpy1_pickle(arr))


def _numpy1_pickle(obj):
    # Protocol 3 writes globals as GLOBAL "module\nname\n" with no length
    # prefix and no framing, so renaming the module in place is safe.
    data = pickle.dumps(obj, protocol=3)
    out = bytearray()
    last = 0
    for op, arg, pos in pickletools.genops(data):
        if op.name != "GLOBAL":
            continue
        module, name = arg.split(" ", 1)
        if module == "numpy._core" or module.startswith("numpy._core."):
            end = data.index(b"\n", data.index(b"\n", pos) + 1) + 1
            module = "numpy.core" + module[len("numpy._core"):]
            out += data[last:pos]
            out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
            last = end
    out += data[last:]
    return bytes(out)


def load_mmdnn_npy(path):
    """Read an MMdnn weights .npy back into a dict."""
    return np.load(path, allow_pickle=True).item()
