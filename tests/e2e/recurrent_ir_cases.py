"""The recurrent cases of test_pytorch_ops (and test_onnx_writer): hand-built IR graphs of LSTM,
GRU and RNN in every direction, through torch's layers and the Recurrent helper, with and without
initial states as inputs. Kept apart to keep test_pytorch_ops short."""


def recurrent_cases(Graph):
    """Graph: test_pytorch_ops's graph builder class."""
    cases = {}
    f, h, t = 3, 4, 5

    def layer(g, op, x, direction="forward", bias=True, states=(), **attrs):
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        d = 2 if direction == "bidirectional" else 1
        n = g.op(op, [x, *states], hidden_size=h, direction=direction, **attrs)
        g.w(n, "W", g.rand(d, gates * h, f))
        g.w(n, "R", g.rand(d, gates * h, h))
        if bias:
            g.w(n, "B", g.rand(d, 2 * gates * h))
        return n

    g = Graph(15)
    x = g.input([2, t, f])
    outs = []
    for direction in ["forward", "reverse", "bidirectional"]:
        n = layer(g, "LSTM", x, direction)
        outs += [n, f"{n}:1", f"{n}:2"]
        n = layer(g, "GRU", x, direction, linear_before_reset=True)
        outs += [n, f"{n}:1"]
        n = layer(g, "RNN", x, direction, bias=False)
        outs += [n, f"{n}:1"]
    outs.append(layer(g, "RNN", x, activation="relu"))
    outs.append(f"{layer(g, 'LSTM', x, bias=False)}:1")
    g.output(*outs)
    cases["recurrent_torch_layers"] = g

    g = Graph(16)
    x = g.input([2, t, f])
    outs = []
    for direction in ["forward", "reverse", "bidirectional"]:
        n = layer(g, "LSTM", x, direction, recurrent_activation="hard_sigmoid")
        outs += [n, f"{n}:1", f"{n}:2"]
        n = layer(g, "GRU", x, direction)
        outs += [n, f"{n}:1"]
    outs.append(layer(g, "RNN", x, activation="sigmoid"))
    outs.append(layer(g, "GRU", x, activation="relu", bias=False, linear_before_reset=True))
    outs.append(layer(g, "LSTM", x, activation="linear"))
    for direction in ["forward", "bidirectional"]:
        n = layer(g, "LSTM", x, direction)
        g.w(n, "P", g.rand(2 if direction == "bidirectional" else 1, 3 * h))
        outs += [n, f"{n}:1", f"{n}:2"]
    g.output(*outs)
    cases["recurrent_explicit"] = g

    # Initial states as inputs ([N, D·H]), through nn.LSTM/GRU/RNN and the helper.
    g = Graph(17)
    x = g.input([2, t, f])
    s1, s2 = g.input([2, h]), g.input([2, 2 * h])
    c1, c2 = g.input([2, h]), g.input([2, 2 * h])
    outs = []
    for direction in ["forward", "reverse", "bidirectional"]:
        s, c = (s2, c2) if direction == "bidirectional" else (s1, c1)
        n = layer(g, "LSTM", x, direction, states=[s, c])
        outs += [n, f"{n}:1", f"{n}:2"]
        n = layer(g, "GRU", x, direction, states=[s], linear_before_reset=True)
        outs += [n, f"{n}:1"]
        n = layer(g, "RNN", x, direction, states=[s], bias=False)
        outs += [n, f"{n}:1"]
        n = layer(g, "GRU", x, direction, states=[s])
        outs += [n, f"{n}:1"]
        n = layer(g, "LSTM", x, direction, states=[s], recurrent_activation="hard_sigmoid")
        outs += [n, f"{n}:1", f"{n}:2"]
    n = layer(g, "LSTM", x, states=[s1])
    outs += [n, f"{n}:2"]
    g.output(*outs)
    cases["recurrent_states"] = g
    return cases
