"""Runs an ONNX model with onnxruntime (CPU); with layers, every node output is also fetched,
keyed by its tensor name and by its node's name (`node` for output 0, `node:i` after)."""
import onnxruntime as ort

from common import main, port

DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16", "tensor(int8)": "int8", "tensor(int16)": "int16",
    "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def _session(model_bytes_or_path):
    return ort.InferenceSession(model_bytes_or_path, providers=["CPUExecutionProvider"])


def load(model, weights):
    return {"path": model, "session": _session(model), "probe": None,
            "runtime": f"onnxruntime {ort.__version__}"}


def describe(h):
    s = h["session"]
    return {
        "inputs": [port(i.name, i.shape, DTYPES.get(i.type)) for i in s.get_inputs()],
        "outputs": [port(o.name, o.shape, DTYPES.get(o.type)) for o in s.get_outputs()],
    }


def _probe(h):
    """A session that also returns every node output, and each node output's keys, in order."""
    if h["probe"] is None:
        import onnx

        m = onnx.load(h["path"])
        fetched = {o.name for o in m.graph.output}
        inputs = {i.name for i in m.graph.input}
        keys = []
        for node in m.graph.node:
            for i, t in enumerate(node.output):
                if not t or t in inputs:
                    continue
                names = [t]
                if node.name:
                    names.append(node.name if i == 0 else f"{node.name}:{i}")
                if t not in fetched:
                    m.graph.output.append(onnx.ValueInfoProto(name=t))
                    fetched.add(t)
                keys.append((names, t))
        h["probe"] = (_session(m.SerializeToString()), keys)
    return h["probe"]


def run(h, inputs, layers):
    s = h["session"]
    feeds = {i.name: v for i, (_, v) in zip(s.get_inputs(), inputs)}
    names = [o.name for o in s.get_outputs()]
    if not layers:
        return list(zip(names, s.run(None, feeds))), []
    probe, keys = _probe(h)
    fetch = [o.name for o in probe.get_outputs()]
    values = dict(zip(fetch, probe.run(None, feeds)))
    return [(n, values[n]) for n in names], [(k, values[t]) for k, t in keys]


if __name__ == "__main__":
    main(load, describe, run)
