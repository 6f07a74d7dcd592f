"""Nothing from a model file reaches the generated Python unescaped.

A model whose layer names try to inject code (quotes, `__import__`, newlines in names that end
up in comments), shadow Python or nn.Module names (`__init__`, `class`, `None`, `forward`,
`training`), use non-ASCII characters or run to 10,000 characters is converted; the code must
pass ruff and py_compile, load its state dict, compute what `mmdnn run` computes, and create
no file.
"""

import os

import numpy as np
from test_pytorch_ops import Graph, convert_and_compare

EVIL = 'x"); __import__("os").system("touch pwned") #'
NAMES = [
    EVIL,
    "__init__",
    "class",
    "None",
    "forward",
    "training",
    "self",
    "ünïcödé 层",
    "L" + "é" * 9999,
    "line\nimport os; os.system('touch pwned')  # \r\u2028\x0b\x0c\x85",
    "'''\"\"\"\\",
    "conv 1",
    "conv-1",
    "conv_1",
    "0day",
    "",
]


def evil_graph():
    g = Graph(42)
    x = g.input([2, 3, 6, 6], name=EVIL)
    names = iter(NAMES[1:])
    c = g.op("Conv", [x], name=next(names), kernel_shape=[3, 3], pads=[1, 1, 1, 1], out_channels=4,
             use_bias=True)
    g.w(c, "weights", g.rand(4, 3, 3, 3)), g.w(c, "bias", g.rand(4))
    y = c
    for op in ["Relu", "Sigmoid", "Tanh"]:
        y = g.op(op, [y], name=next(names))
    bn = g.op("BatchNorm", [y], name=next(names))
    for p in ("mean", "scale", "bias"):
        g.w(bn, p, g.rand(4))
    g.w(bn, "var", np.ones(4, np.float32))
    k = g.const(g.rand(1, 4, 1, 1), name=next(names))
    y = g.op("Mul", [bn, k], name=next(names))
    p = g.op("PRelu", [y], name=next(names))
    g.w(p, "slope", g.rand(6, 6))
    f = g.op("Flatten", [p], name=next(names))
    fc = g.op("FullyConnected", [f], name=next(names), units=5, use_bias=True)
    g.w(fc, "weights", g.rand(144, 5)), g.w(fc, "bias", g.rand(5))
    s = g.op("Softmax", [fc], name=next(names))
    lstm_in = g.op("Reshape", [fc], name=next(names), shape=[0, 1, 5])
    lstm = g.op("LSTM", [lstm_in], name=next(names), hidden_size=2)
    g.w(lstm, "W", g.rand(1, 8, 5)), g.w(lstm, "R", g.rand(1, 8, 2))
    g.output(s, f"{lstm}:1")
    return g


def test_hostile_names(tmp_path, run_mmdnn, run_in_subprocess):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        errors = convert_and_compare(tmp_path, run_mmdnn, run_in_subprocess, {"evil": evil_graph()})
    finally:
        os.chdir(cwd)
    print("max |Δ|:", errors)
    code = (tmp_path / "evil" / "model.py").read_text()
    assert code.isascii()
    assert "__import__" not in code.replace('__import__(\\"os\\")', "")
    assert not list(tmp_path.rglob("pwned")), "the generated code ran an injected command"
    assert not (tmp_path.parent / "pwned").exists()
