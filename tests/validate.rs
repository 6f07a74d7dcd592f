//! Validation reports every problem of a graph in one error, naming node and op.
use mmdnn::ir::validate::check;
use mmdnn::ir::{AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor};

fn input(name: &str, shape: Vec<i64>) -> Node {
    Node::new(name, "DataInput")
        .with_attr("dtype", AttrValue::Type(DType::F32))
        .with_attr("shape", AttrValue::Shape(shape))
}

fn graph(nodes: Vec<Node>, outputs: &[&str]) -> Graph {
    Graph {
        inputs: nodes
            .iter()
            .filter(|n| n.op == "DataInput")
            .map(|n| n.name.clone())
            .collect(),
        nodes,
        outputs: outputs.iter().map(|o| TensorRef::parse(o)).collect(),
        output_names: vec![],
        producer: "test".into(),
    }
}

#[test]
fn valid_graph_gets_types() {
    let mut g = graph(
        vec![
            input("x", vec![-1, 3, 8, 8]),
            Node::new("conv", "Conv")
                .with_inputs([TensorRef::parse("x")])
                .with_attr("kernel_shape", AttrValue::Ints(vec![3, 3]))
                .with_attr("strides", AttrValue::Ints(vec![2, 2]))
                .with_attr("pads", AttrValue::Ints(vec![1, 1, 0, 0]))
                .with_attr("out_channels", AttrValue::Int(4)),
            Node::new("pool", "GlobalPool")
                .with_inputs([TensorRef::parse("conv")])
                .with_attr("keepdims", AttrValue::Bool(false)),
        ],
        &["pool"],
    );
    check(&mut g, None).unwrap();
    // (8 + 1 + 0 - 3) / 2 + 1 = 4
    assert_eq!(g.node("conv").unwrap().outputs[0].shape, vec![-1, 4, 4, 4]);
    assert_eq!(g.node("pool").unwrap().outputs[0].shape, vec![-1, 4]);
}

#[test]
fn every_problem_is_listed_at_once() {
    let mut g = graph(
        vec![
            input("x", vec![1, 4]),
            Node::new("a", "Frobnicate").with_inputs([TensorRef::parse("x")]),
            Node::new("b", "Relu").with_inputs([TensorRef::parse("nowhere")]),
            Node::new("c", "Softmax")
                .with_inputs([TensorRef::parse("x")])
                .with_attr("axis", AttrValue::Str("last".into())),
            Node::new("d", "Pad")
                .with_inputs([TensorRef::parse("x")])
                .with_attr("pads", AttrValue::Ints(vec![0, 0, 1, 1]))
                .with_attr("mode", AttrValue::Str("wrap".into())),
            Node::new("e", "Add").with_inputs([TensorRef::parse("x")]),
        ],
        &["a", "b", "c", "d", "e"],
    );
    let err = format!("{:#}", check(&mut g, None).unwrap_err());
    for needle in [
        "node 'a': unknown op 'Frobnicate'",
        "node 'b' (Relu): input 'nowhere' is dangling",
        "node 'c' (Softmax): attribute 'axis': expected int, found string",
        "node 'd' (Pad): attribute 'mode' is \"wrap\"",
        "node 'e' (Add): takes 2 input(s), got 1",
    ] {
        assert!(err.contains(needle), "missing «{needle}» in:\n{err}");
    }
    assert!(err.contains("5 problems"), "{err}");
}

#[test]
fn shape_mismatch_and_cycle() {
    let mut g = graph(
        vec![
            input("x", vec![1, 4]),
            input("y", vec![1, 5]),
            Node::new("add", "Add").with_inputs([TensorRef::parse("x"), TensorRef::parse("y")]),
        ],
        &["add"],
    );
    let err = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(
        err.contains("node 'add' (Add)") && err.contains("do not broadcast"),
        "{err}"
    );

    let mut g = graph(
        vec![
            Node::new("p", "Relu").with_inputs([TensorRef::parse("q")]),
            Node::new("q", "Relu").with_inputs([TensorRef::parse("p")]),
        ],
        &["q"],
    );
    let err = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(
        err.contains("cycle") && err.contains("p") && err.contains("q"),
        "{err}"
    );
}

#[test]
fn declared_types_are_checked_and_weights_required() {
    let mut fc = Node::new("fc", "FullyConnected")
        .with_inputs([TensorRef::parse("x")])
        .with_attr("units", AttrValue::Int(3))
        .with_attr("use_bias", AttrValue::Bool(true));
    fc.outputs = vec![mmdnn::ir::TensorType::f32(vec![-1, 7])];
    let mut g = graph(vec![input("x", vec![-1, 4]), fc], &["fc"]);
    let mut w = MemoryWeights::default();
    w.insert(
        "fc",
        "weights",
        Tensor::from_f32(vec![4, 3], &[0.0; 12]).unwrap(),
    );
    let err = format!("{:#}", check(&mut g, Some(&w)).unwrap_err());
    assert!(err.contains("weight 'bias'"), "{err}");
    w.insert("fc", "bias", Tensor::from_f32(vec![3], &[0.0; 3]).unwrap());
    let err = format!("{:#}", check(&mut g, Some(&w)).unwrap_err());
    assert!(
        err.contains("declared output types float32[?, 7] do not match the inferred float32[?, 3]"),
        "{err}"
    );
}

fn conv(name: &str, strides: Vec<i64>, dilations: Vec<i64>, pads: Vec<i64>) -> Node {
    Node::new(name, "Conv")
        .with_inputs([TensorRef::parse("x")])
        .with_attr("kernel_shape", AttrValue::Ints(vec![3, 3]))
        .with_attr("strides", AttrValue::Ints(strides))
        .with_attr("dilations", AttrValue::Ints(dilations))
        .with_attr("pads", AttrValue::Ints(pads))
        .with_attr("out_channels", AttrValue::Int(4))
}

/// Hostile geometry is refused by validation, each naming its node: a zero stride (a division
/// by zero in the shape rule before), a dilation of 2^30 (an output of size 0 before), negative
/// and absurd pads.
#[test]
fn absurd_window_geometry_is_refused() {
    let mut g = graph(
        vec![
            input("x", vec![1, 3, 8, 8]),
            conv("zero_stride", vec![0, 0], vec![1, 1], vec![0; 4]),
            conv("huge_dilation", vec![1, 1], vec![1 << 30, 1], vec![0; 4]),
            conv("negative_pads", vec![1, 1], vec![1, 1], vec![-1, 0, 0, 0]),
            conv(
                "absurd_pads",
                vec![1, 1],
                vec![1, 1],
                vec![1 << 40, 0, 0, 0],
            ),
        ],
        &[
            "zero_stride",
            "huge_dilation",
            "negative_pads",
            "absurd_pads",
        ],
    );
    let e = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(e.contains("4 problems"), "{e}");
    assert!(
        e.contains("'zero_stride' (Conv): strides [0, 0]: 0 is not between 1"),
        "{e}"
    );
    assert!(e.contains("'huge_dilation' (Conv): the window"), "{e}");
    assert!(
        e.contains("'negative_pads' (Conv): pads [-1, 0, 0, 0]"),
        "{e}"
    );
    assert!(e.contains("'absurd_pads' (Conv): pads"), "{e}");
}

/// A shape whose byte count does not fit memory (2^62 float32 elements) is refused, where its
/// element count used to wrap to a small number.
#[test]
fn shapes_larger_than_memory_are_refused() {
    let mut g = graph(
        vec![
            input("x", vec![1 << 31, 1 << 31]),
            Node::new("r", "Reshape")
                .with_inputs([TensorRef::parse("x")])
                .with_attr("shape", AttrValue::Ints(vec![1 << 62])),
        ],
        &["r"],
    );
    let e = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(e.contains("more elements than memory can address"), "{e}");
}

/// Stored weights must have the shape their op expects for the node: a Conv bias of rank 100
/// used to pass and make a `.pth` that `load_state_dict` refuses (a tensor of more than 64 dims
/// is now refused when read, so this takes rank 3), as did a kernel for other channels.
#[test]
fn weights_of_the_wrong_shape_are_refused() {
    let conv = |name: &str| {
        Node::new(name, "Conv")
            .with_inputs([TensorRef::parse("x")])
            .with_attr("kernel_shape", AttrValue::Ints(vec![3, 3]))
            .with_attr("out_channels", AttrValue::Int(4))
            .with_attr("use_bias", AttrValue::Bool(true))
    };
    let mut g = graph(
        vec![
            input("x", vec![-1, 2, 8, 8]),
            conv("good"),
            conv("rank100"),
            conv("kernel"),
        ],
        &["good", "rank100", "kernel"],
    );
    let zeros = |shape: Vec<usize>| {
        let n = shape.iter().product();
        Tensor::from_f32(shape, &vec![0.0; n]).unwrap()
    };
    let mut w = MemoryWeights::default();
    for name in ["good", "rank100", "kernel"] {
        w.insert(name, "weights", zeros(vec![4, 2, 3, 3]));
        w.insert(name, "bias", zeros(vec![4]));
    }
    w.insert("rank100", "bias", zeros(vec![4, 1, 1]));
    w.insert("kernel", "weights", zeros(vec![4, 3, 3, 3]));
    let e = format!("{:#}", check(&mut g, Some(&w)).unwrap_err());
    assert!(e.contains("(2 problems)"), "{e}");
    assert!(
        e.contains("node 'rank100' (Conv): weight 'bias' has shape [4, 1, 1]"),
        "{e}"
    );
    assert!(e.contains("the op expects [4] ([out]"), "{e}");
    assert!(
        e.contains("node 'kernel' (Conv): weight 'weights' has shape [4, 3, 3, 3]; the op expects [4, 2, 3, 3]"),
        "{e}"
    );
    assert!(!e.contains("'good'"), "{e}");
}

/// Ranks above the documented limit (64, NumPy's) are refused naming the node; elementwise
/// inputs that do not broadcast are refused, naming both shapes.
#[test]
fn ranks_past_the_limit_and_broadcast_mismatches_are_refused() {
    let mut g = graph(
        vec![
            input("deep", vec![1; 65]),
            input("a", vec![2, 3]),
            input("b", vec![4, 3]),
            Node::new("sum", "Add").with_inputs([TensorRef::parse("a"), TensorRef::parse("b")]),
        ],
        &["deep", "sum"],
    );
    let e = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(e.contains("(2 problems)"), "{e}");
    assert!(
        e.contains("node 'deep' (DataInput): its output float32[")
            && e.contains("has 65 dims; at most 64"),
        "{e}"
    );
    assert!(e.contains("node 'sum' (Add):"), "{e}");
    assert!(e.contains("[2, 3]") && e.contains("[4, 3]"), "{e}");
}

/// A Concat whose axis sizes sum past i64 is an error, not an overflow (found by the ir_pb fuzz
/// target).
#[test]
fn concat_sizes_that_overflow_are_refused() {
    // 2^62 bytes each fit in memory's range; their sum does not fit an i64 dim.
    let half = |name: &str| {
        Node::new(name, "DataInput")
            .with_attr("dtype", AttrValue::Type(DType::U8))
            .with_attr("shape", AttrValue::Shape(vec![1 << 62]))
    };
    let mut g = graph(
        vec![
            half("x"),
            half("y"),
            Node::new("c", "Concat")
                .with_inputs([TensorRef::parse("x"), TensorRef::parse("y")])
                .with_attr("axis", AttrValue::Int(0)),
        ],
        &["c"],
    );
    let e = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(e.contains("node 'c' (Concat)"), "{e}");
    assert!(e.contains("axis 0 overflows"), "{e}");
}

/// Shape rules whose arithmetic would pass i64 report it (Tile found by the onnx fuzz target;
/// Pad, Split and a Slice step of i64::MIN alike).
#[test]
fn shape_rules_that_overflow_are_refused() {
    let cases = [
        Node::new("t", "Tile").with_attr("repeats", AttrValue::Ints(vec![i64::MAX, 1])),
        Node::new("t", "Pad").with_attr("pads", AttrValue::Ints(vec![i64::MAX, 0, 1, 0])),
        Node::new("t", "Split")
            .with_attr("axis", AttrValue::Int(0))
            .with_attr("split", AttrValue::Ints(vec![i64::MAX, 1, -1])),
        Node::new("t", "Slice")
            .with_attr("starts", AttrValue::Ints(vec![0]))
            .with_attr("ends", AttrValue::Ints(vec![1]))
            .with_attr("steps", AttrValue::Ints(vec![i64::MIN])),
    ];
    for node in cases {
        let op = node.op.clone();
        let mut g = graph(
            vec![
                input("x", vec![2, 3]),
                node.with_inputs([TensorRef::parse("x")]),
            ],
            &["t"],
        );
        let e = format!("{:#}", check(&mut g, None).unwrap_err());
        assert!(e.contains(&format!("node 't' ({op})")), "{e}");
        assert!(e.contains("overflows"), "{op}: {e}");
    }
}

/// A recurrent node `name` reading x [N, 5, 3] and the given initial states, bidirectional with
/// H = 4.
fn recurrent(name: &str, op: &str, states: &[&str]) -> Node {
    let mut inputs = vec![TensorRef::parse("x")];
    inputs.extend(states.iter().map(|s| TensorRef::parse(s)));
    Node::new(name, op)
        .with_inputs(inputs)
        .with_attr("hidden_size", AttrValue::Int(4))
        .with_attr("direction", AttrValue::Str("bidirectional".into()))
}

#[test]
fn recurrent_initial_states_are_shaped_like_the_final_ones() {
    // h0/c0 are [N, D·H] = [N, 8]; the batch unknown in x is taken from the states.
    let mut g = graph(
        vec![
            input("x", vec![-1, 5, 3]),
            input("h0", vec![2, 8]),
            input("c0", vec![2, -1]),
            recurrent("rnn", "LSTM", &["h0", "c0"]),
        ],
        &["rnn:0", "rnn:1", "rnn:2"],
    );
    check(&mut g, None).unwrap();
    let outs = &g.node("rnn").unwrap().outputs;
    assert_eq!(outs[0].shape, vec![2, 5, 8]);
    assert_eq!(outs[1].shape, vec![2, 8]);
    assert_eq!(outs[2].shape, vec![2, 8]);
}

#[test]
fn recurrent_initial_states_of_the_wrong_shape_or_count_are_refused() {
    // h0 of one direction only ([N, H] instead of [N, D·H]), a GRU given a cell state, and a
    // state whose batch differs from x's.
    let mut g = graph(
        vec![
            input("x", vec![2, 5, 3]),
            input("h_one_dir", vec![2, 4]),
            input("h3", vec![3, 8]),
            recurrent("rnn", "LSTM", &["h_one_dir"]),
            recurrent("gru", "GRU", &["h3", "h3"]),
            recurrent("rnn2", "RNN", &["h3"]),
        ],
        &["rnn", "gru", "rnn2"],
    );
    let err = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(
        err.contains("initial state h0 is float32[2, 4]; expected float32[2, 8]"),
        "{err}"
    );
    assert!(err.contains("takes 1 to 2 inputs, got 3"), "{err}");
    assert!(
        err.contains("initial state h0 is float32[3, 8]; expected float32[2, 8]"),
        "{err}"
    );
}

fn same_window(name: &str, op: &str, kernel: i64, stride: i64, auto_pad: &str) -> Node {
    let n = Node::new(name, op)
        .with_inputs([TensorRef::parse("x")])
        .with_attr("kernel_shape", AttrValue::Ints(vec![kernel, kernel]))
        .with_attr("strides", AttrValue::Ints(vec![stride, stride]))
        .with_attr("auto_pad", AttrValue::Str(auto_pad.into()));
    if op == "Conv" {
        n.with_attr("out_channels", AttrValue::Int(4))
    } else {
        n
    }
}

/// `auto_pad` same_*: ceil(size / stride) outputs, a symbolic expression over a symbolic size
/// and a number over a known one; explicit pads or ceil_mode with it are refused.
#[test]
fn same_padding_at_run_time_gives_ceil_of_size_over_stride() {
    use mmdnn::ir::dim;
    for (w, stride, want) in [(dim::symbol("W"), 2, "(W + 1) // 2"), (7, 3, "3")] {
        let mut g = graph(
            vec![
                input("x", vec![1, 3, dim::symbol("H"), w]),
                same_window("conv", "Conv", 3, stride, "same_upper"),
                same_window("pool", "Pool", 1, stride, "same_lower"),
            ],
            &["conv", "pool"],
        );
        check(&mut g, None).unwrap();
        for name in ["conv", "pool"] {
            let shape = &g.node(name).unwrap().outputs[0].shape;
            let text: Vec<String> = shape.iter().map(|&d| dim::text(d)).collect();
            let h = format!("(H + {}) // {stride}", stride - 1);
            assert_eq!(text[2..], [h.as_str(), want], "{name}");
        }
    }
    let mut g = graph(
        vec![
            input("x", vec![1, 3, dim::symbol("H"), 8]),
            same_window("pads_too", "Conv", 3, 2, "same_upper")
                .with_attr("pads", AttrValue::Ints(vec![1, 1, 1, 1])),
            same_window("ceil_too", "Pool", 3, 2, "same_upper")
                .with_attr("ceil_mode", AttrValue::Bool(true)),
            same_window("unknown_mode", "Pool", 3, 2, "same"),
        ],
        &["pads_too", "ceil_too", "unknown_mode"],
    );
    let e = format!("{:#}", check(&mut g, None).unwrap_err());
    assert!(e.contains("3 problems"), "{e}");
    assert!(
        e.contains("'pads_too' (Conv): pads [1, 1, 1, 1] are given with auto_pad same_upper"),
        "{e}"
    );
    assert!(
        e.contains("'ceil_too' (Pool): ceil_mode is given with auto_pad same_upper"),
        "{e}"
    );
    assert!(e.contains("'unknown_mode' (Pool)"), "{e}");
}

/// `from_inputs` (attributes given as run-time tensors) must name attributes that allow it,
/// not given as values too, each with its trailing integer input.
#[test]
fn run_time_attributes_are_checked() {
    let int_input = |name: &str| {
        Node::new(name, "DataInput")
            .with_attr("dtype", AttrValue::Type(DType::I64))
            .with_attr("shape", AttrValue::Shape(vec![2]))
    };
    let reshape = |name: &str, inputs: &[&str], names: &[&str]| {
        Node::new(name, "Reshape")
            .with_inputs(inputs.iter().map(|i| TensorRef::parse(i)))
            .with_attr(
                "from_inputs",
                AttrValue::Strs(names.iter().map(|n| n.to_string()).collect()),
            )
    };
    let mut ok = graph(
        vec![
            input("x", vec![2, 3, 4]),
            int_input("s"),
            reshape("y", &["x", "s"], &["shape"]),
        ],
        &["y"],
    );
    check(&mut ok, None).unwrap();
    assert_eq!(ok.node("y").unwrap().outputs[0].shape, vec![-1, -1]);
    let cases: Vec<(Node, &str)> = vec![
        (reshape("y", &["x"], &["shape"]), "takes 1 input(s), got 0"),
        (
            reshape("y", &["x", "s"], &["nope"]),
            "'from_inputs' names unknown attribute 'nope'",
        ),
        (
            reshape("y", &["x", "s"], &["shape"]).with_attr("shape", AttrValue::Ints(vec![4, 6])),
            "given both as a value and as a tensor",
        ),
        (
            reshape("y", &["x", "x"], &["shape"]),
            "is given by a tensor of type float32[2, 3, 4]",
        ),
        (
            Node::new("y", "Softmax")
                .with_inputs([TensorRef::parse("x"), TensorRef::parse("s")])
                .with_attr("from_inputs", AttrValue::Strs(vec!["axis".into()])),
            "attribute 'axis' cannot be a tensor computed at run time",
        ),
    ];
    for (node, want) in cases {
        let mut g = graph(
            vec![input("x", vec![2, 3, 4]), int_input("s"), node],
            &["y"],
        );
        let e = format!("{:#}", check(&mut g, None).unwrap_err());
        assert!(e.contains(want), "want {want:?} in: {e}");
    }
}
