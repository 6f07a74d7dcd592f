//! Importing IR written by Microsoft MMdnn 0.3.1 (`mmdnn::frontends::mmdnn`): genuine MMdnn
//! output from `tests/fixtures/mmdnn/` and hand-built MMdnn graphs.
use mmdnn::frontends::mmdnn::import;
use mmdnn::interp::{self, Interpreter};
use mmdnn::ir::{validate, AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::proto::{self, attr_value::Value};
use mmdnn::weights::{MemoryWeights, NpzReader, Tensor, WeightReader};
use prost::Message;
use std::path::PathBuf;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mmdnn")
        .join(name)
}

fn fixture(name: &str) -> proto::GraphDef {
    let path = fixture_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    proto::GraphDef::decode(&bytes[..]).expect("an MMdnn GraphDef")
}

/// The first `_output_shapes` entry MMdnn recorded for `node`.
fn recorded(gd: &proto::GraphDef, node: &str) -> Vec<i64> {
    let n = gd
        .node
        .iter()
        .find(|n| n.name == node)
        .expect("node exists");
    match n.attr["_output_shapes"].value.as_ref() {
        Some(Value::List(l)) => l.shape[0].dim.iter().map(|d| d.size).collect(),
        v => panic!("no _output_shapes on {node}: {v:?}"),
    }
}

fn imported(gd: &proto::GraphDef) -> Graph {
    let (mut graph, _) = import(gd).expect("import");
    validate::check(&mut graph, None).expect("valid graph");
    graph
}

fn node<'a>(g: &'a Graph, name: &str) -> &'a Node {
    g.node(name).unwrap_or_else(|| panic!("no node '{name}'"))
}

fn attr<'a>(g: &'a Graph, name: &str, key: &str) -> &'a AttrValue {
    node(g, name)
        .attrs
        .get(key)
        .unwrap_or_else(|| panic!("node '{name}' has no attribute '{key}'"))
}

fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

fn shape(g: &Graph, name: &str) -> Vec<i64> {
    node(g, name).outputs[0].shape.clone()
}

#[test]
fn genuine_keras_tiny_imports_and_matches_mmdnn_shapes() {
    let gd = fixture("keras_tiny.pb");
    let g = imported(&gd);
    assert_eq!(g.producer, "MMdnn 0.3.1 IR (imported)");
    assert_eq!(g.inputs, ["input_1"]);
    assert_eq!(g.outputs, [TensorRef::new("dense_1_activation", 0)]);
    let ops: Vec<(&str, &str)> = g
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.op.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("input_1", "DataInput"),
            ("conv2d_1", "Conv"),
            ("conv2d_1_activation", "Relu"),
            ("max_pooling2d_1", "Pool"),
            ("flatten_1", "Flatten"),
            ("dense_1", "FullyConnected"),
            ("dense_1_activation", "Softmax"),
        ]
    );
    for n in &g.nodes {
        assert_eq!(
            shape(&g, &n.name),
            recorded(&gd, &n.name),
            "node {}",
            n.name
        );
    }
    assert_eq!(shape(&g, "dense_1_activation"), [-1, 5]);
    assert_eq!(attr(&g, "input_1", "dtype"), &AttrValue::Type(DType::F32));
    assert_eq!(
        attr(&g, "input_1", "shape"),
        &AttrValue::Shape(vec![-1, 8, 8, 3])
    );
    let conv = [
        ("kernel_shape", ints(&[3, 3])),
        ("strides", ints(&[1, 1])),
        ("dilations", ints(&[1, 1])),
        ("pads", ints(&[1, 1, 1, 1])),
        ("group", AttrValue::Int(1)),
        ("out_channels", AttrValue::Int(4)),
        ("use_bias", AttrValue::Bool(true)),
        ("data_format", AttrValue::Str("channels_last".into())),
    ];
    for (k, v) in conv {
        assert_eq!(attr(&g, "conv2d_1", k), &v, "conv2d_1 {k}");
    }
    let pool = [
        ("pooling_type", AttrValue::Str("MAX".into())),
        ("kernel_shape", ints(&[2, 2])),
        ("strides", ints(&[2, 2])),
        ("pads", ints(&[0, 0, 0, 0])),
        ("count_include_pad", AttrValue::Bool(false)),
        ("data_format", AttrValue::Str("channels_last".into())),
    ];
    for (k, v) in pool {
        assert_eq!(attr(&g, "max_pooling2d_1", k), &v, "max_pooling2d_1 {k}");
    }
    assert_eq!(attr(&g, "flatten_1", "axis"), &AttrValue::Int(1));
    assert_eq!(attr(&g, "dense_1", "units"), &AttrValue::Int(5));
    assert_eq!(attr(&g, "dense_1", "use_bias"), &AttrValue::Bool(true));
    assert_eq!(attr(&g, "dense_1_activation", "axis"), &AttrValue::Int(-1));
}

#[test]
fn genuine_keras_tiny_weights_map_one_to_one() {
    let (graph, map) = import(&fixture("keras_tiny.pb")).unwrap();
    let mut mm = MemoryWeights::default();
    let f = |shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        Tensor::from_f32(shape, &vec![0.5; n]).unwrap()
    };
    mm.insert("conv2d_1", "weights", f(vec![3, 3, 3, 4]));
    mm.insert("conv2d_1", "bias", f(vec![4]));
    mm.insert("dense_1", "weights", f(vec![64, 5]));
    mm.insert("dense_1", "bias", f(vec![5]));
    assert!(map.unmapped(&mm).is_empty());
    let w = map.wrap(Box::new(mm));
    let mut g = graph;
    validate::check(&mut g, Some(&*w)).expect("weights complete");
    assert_eq!(w.read("dense_1", "weights").unwrap().info.shape, [64, 5]);
    let keys = w.keys();
    assert_eq!(keys.len(), 4, "{keys:?}");
}

#[test]
fn genuine_keras_zoo_maps_every_op_as_documented() {
    let gd = fixture("keras_zoo.pb");
    let g = imported(&gd);
    assert_eq!(g.inputs, ["image", "ids"]);
    assert_eq!(g.outputs, [TensorRef::new("fc_activation", 0)]);
    assert_eq!(shape(&g, "fc_activation"), recorded(&gd, "fc_activation"));
    for n in &gd.node {
        assert_eq!(
            shape(&g, &n.name),
            recorded(&gd, &n.name),
            "node {}",
            n.name
        );
    }
    let op = |name: &str| node(&g, name).op.clone();
    // Dilated SAME conv: MMdnn wrote pads [1, 1, 1, 1] (it ignores dilation); SAME needs 2.
    assert_eq!(attr(&g, "dil", "pads"), &ints(&[2, 2, 2, 2]));
    assert_eq!(attr(&g, "dil", "dilations"), &ints(&[2, 2]));
    // DepthwiseConv [3, 3, 3, 2] -> grouped Conv.
    assert_eq!(op("dw"), "Conv");
    assert_eq!(attr(&g, "dw", "group"), &AttrValue::Int(3));
    assert_eq!(attr(&g, "dw", "out_channels"), &AttrValue::Int(6));
    // SeparableConv -> depthwise Conv then 1x1 Conv keeping the name.
    assert_eq!(op("sep_depthwise"), "Conv");
    assert_eq!(attr(&g, "sep_depthwise", "group"), &AttrValue::Int(3));
    assert_eq!(
        attr(&g, "sep_depthwise", "out_channels"),
        &AttrValue::Int(3)
    );
    assert_eq!(node(&g, "sep").inputs, [TensorRef::new("sep_depthwise", 0)]);
    assert_eq!(attr(&g, "sep", "kernel_shape"), &ints(&[1, 1]));
    assert_eq!(attr(&g, "sep", "use_bias"), &AttrValue::Bool(false));
    // Add of three inputs -> a chain whose last node keeps the name.
    assert_eq!(op("add3"), "Add");
    let first = &node(&g, "add3").inputs[0];
    assert_eq!(op(&first.node), "Add");
    assert_eq!(node(&g, &first.node).inputs.len(), 2);
    assert_eq!(op("bn"), "BatchNorm");
    assert_eq!(attr(&g, "bn", "axis"), &AttrValue::Int(-1));
    assert_eq!(attr(&g, "bn", "epsilon"), &AttrValue::Float(0.001));
    assert_eq!(op("r6"), "Clip");
    assert_eq!(attr(&g, "r6", "max"), &AttrValue::Float(6.0));
    assert_eq!(op("r3"), "Clip");
    assert_eq!(attr(&g, "r3", "max"), &AttrValue::Float(3.0));
    assert_eq!(attr(&g, "lrelu", "alpha"), &AttrValue::Float(0.2));
    assert_eq!(attr(&g, "avg", "pads"), &ints(&[0, 0, 1, 1]));
    assert_eq!(
        attr(&g, "avg", "count_include_pad"),
        &AttrValue::Bool(false)
    );
    assert_eq!(attr(&g, "zpad", "pads"), &ints(&[0, 1, 2, 0, 0, 0, 1, 0]));
    assert_eq!(attr(&g, "zpad", "mode"), &AttrValue::Str("constant".into()));
    assert_eq!(op("crop"), "Slice");
    assert_eq!(attr(&g, "crop", "starts"), &ints(&[1, 0]));
    assert_eq!(attr(&g, "crop", "ends"), &ints(&[i64::MAX, -2]));
    assert_eq!(op("up"), "Resize");
    assert_eq!(attr(&g, "up", "scales"), &AttrValue::Floats(vec![2.0, 2.0]));
    // ConvTranspose: kernel_shape says [3, 3, 4, 3]; the output channels come from the shape.
    assert_eq!(attr(&g, "deconv", "out_channels"), &AttrValue::Int(3));
    assert_eq!(attr(&g, "deconv", "pads"), &ints(&[0, 0, 1, 1]));
    // Keras Maximum([t, t]): MMdnn keeps one input; it is used twice.
    assert_eq!(
        node(&g, "mx").inputs,
        [TensorRef::new("deconv", 0), TensorRef::new("deconv", 0)]
    );
    assert_eq!(op("gap"), "GlobalPool");
    assert_eq!(attr(&g, "gap", "keepdims"), &AttrValue::Bool(false));
    assert_eq!(op("drop"), "Identity");
    assert_eq!(attr(&g, "resh", "shape"), &ints(&[-1, 3, 1]));
    // The Keras parser writes axis -1 as 3 even for 2-d tensors.
    assert_eq!(attr(&g, "cat", "axis"), &AttrValue::Int(-1));
    assert_eq!(op("emb"), "Embedding");
}

#[test]
fn genuine_keras_zoo_weight_map_covers_every_mmdnn_weight() {
    let (mut graph, map) = import(&fixture("keras_zoo.pb")).unwrap();
    // The keys and shapes of keras_zoo.npy.
    let stored: &[(&str, &str, &[usize])] = &[
        ("dw", "weights", &[3, 3, 3, 2]),
        ("dw", "bias", &[6]),
        ("dil", "weights", &[3, 3, 3, 4]),
        ("dil", "bias", &[4]),
        ("sep", "depthwise_filter", &[3, 3, 3, 1]),
        ("sep", "pointwise_filter", &[1, 1, 3, 4]),
        ("emb", "embedding_weights", &[10, 3]),
        ("bn", "scale", &[6]),
        ("bn", "bias", &[6]),
        ("bn", "mean", &[6]),
        ("bn", "var", &[6]),
        ("pw", "weights", &[1, 1, 6, 4]),
        ("pw", "bias", &[4]),
        ("deconv", "weights", &[3, 3, 3, 4]),
        ("deconv", "bias", &[3]),
        ("fc", "weights", &[18, 5]),
        ("fc", "bias", &[5]),
    ];
    let mut mm = MemoryWeights::default();
    for (layer, key, shape) in stored {
        let n = shape.iter().product();
        mm.insert(
            layer,
            key,
            Tensor::from_f32(shape.to_vec(), &vec![1.0; n]).unwrap(),
        );
    }
    assert!(map.unmapped(&mm).is_empty(), "{:?}", map.unmapped(&mm));
    mm.insert("fc", "alpha", Tensor::from_f32(vec![1], &[2.0]).unwrap());
    assert_eq!(map.unmapped(&mm), [("fc".to_string(), "alpha".to_string())]);
    let w = map.wrap(Box::new(mm));
    validate::check(&mut graph, Some(&*w)).expect("every weight the graph needs is mapped");
    assert_eq!(
        w.info("sep_depthwise", "weights").unwrap().shape,
        [3, 3, 1, 3]
    );
    assert_eq!(w.info("sep", "weights").unwrap().shape, [1, 1, 3, 4]);
    assert_eq!(w.info("dw", "weights").unwrap().shape, [3, 3, 1, 6]);
    assert_eq!(w.info("emb", "weights").unwrap().shape, [10, 3]);
    assert!(w.info("sep", "bias").is_none());
}

/// The imported zoo, run by the interpreter on MMdnn's own weights (re-saved as `.npz`, see
/// make_keras_zoo_npz.py), computes what Keras computed, at the output and at intermediate
/// layers: the mapping keeps MMdnn's meaning, not only its shapes.
#[test]
fn genuine_keras_zoo_runs_like_keras() {
    let (mut graph, map) = import(&fixture("keras_zoo.pb")).unwrap();
    let mmdnn_weights = NpzReader::open(&fixture_path("keras_zoo_weights.npz")).unwrap();
    assert!(map.unmapped(&mmdnn_weights).is_empty());
    let weights = map.wrap(Box::new(mmdnn_weights));
    validate::check(&mut graph, Some(&*weights)).unwrap();
    let io = NpzReader::open(&fixture_path("keras_zoo_io.npz")).unwrap();
    let input = |name: &str| {
        let t = io.read("in", name).unwrap();
        (name.to_string(), interp::Value::from_tensor(&t).unwrap())
    };
    let inputs = [input("image"), input("ids")];
    let mut compared = vec![];
    let mut on_node = |n: &Node, outs: &[interp::Value]| {
        let Ok(want) = io.read("out", &n.name) else {
            return;
        };
        let got = outs[0].to_f32();
        assert_eq!(got.shape(), &want.info.shape[..], "node {}", n.name);
        let diff = got
            .iter()
            .zip(want.to_f32())
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        assert!(
            diff < 1e-4,
            "node {}: max difference {diff} from Keras",
            n.name
        );
        compared.push(n.name.clone());
    };
    Interpreter::new(&graph, &*weights)
        .run_all(&inputs, &mut on_node)
        .unwrap();
    compared.sort();
    let expected = [
        "add3",
        "avg",
        "cat",
        "crop",
        "deconv",
        "dil",
        "dw",
        "fc_activation",
        "gap",
        "sep",
        "up",
    ];
    assert_eq!(compared, expected);
}

// ---- hand-built MMdnn graphs ----

fn a(value: Value) -> proto::AttrValue {
    proto::AttrValue { value: Some(value) }
}

fn list_i(v: &[i64]) -> proto::AttrValue {
    a(Value::List(proto::attr_value::ListValue {
        i: v.to_vec(),
        ..Default::default()
    }))
}

fn mm_node(
    name: &str,
    op: &str,
    inputs: &[&str],
    attrs: Vec<(&str, proto::AttrValue)>,
) -> proto::NodeDef {
    proto::NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: attrs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<std::collections::BTreeMap<_, _>>(),
        output_info: vec![],
    }
}

fn mm_input(name: &str, shape: &[i64]) -> proto::NodeDef {
    let shape = proto::TensorShape {
        dim: shape
            .iter()
            .map(|&size| proto::tensor_shape::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    };
    mm_node(
        name,
        "DataInput",
        &[],
        vec![
            ("dtype", a(Value::Type(proto::DataType::DtFloat32 as i32))),
            ("shape", a(Value::Shape(shape))),
        ],
    )
}

fn graph_def(nodes: Vec<proto::NodeDef>) -> proto::GraphDef {
    proto::GraphDef {
        node: nodes,
        ..Default::default()
    }
}

#[test]
fn unsupported_ops_are_all_listed_in_one_error() {
    let gd = graph_def(vec![
        mm_input("x", &[-1, 13, 13, 3]),
        mm_node("yolo_1", "yolo", &["x"], vec![]),
        mm_node("relu", "Relu", &["x"], vec![]),
        mm_node("scope_3", "Scope", &["relu"], vec![]),
        mm_node("lstm", "LSTM", &["x"], vec![]),
    ]);
    let err = import(&gd).unwrap_err().to_string();
    assert_eq!(
        err,
        "MMdnn IR has 3 nodes with ops mmdnn cannot map: 'yolo_1' (yolo), 'scope_3' (Scope), 'lstm' (LSTM)"
    );
    let one = graph_def(vec![
        mm_input("x", &[-1, 3]),
        mm_node("avg", "Avg", &["x", "x"], vec![]),
    ]);
    assert_eq!(
        import(&one).unwrap_err().to_string(),
        "MMdnn IR has 1 node with an op mmdnn cannot map: 'avg' (Avg)"
    );
}

#[test]
fn attribute_problems_name_every_node_and_op() {
    let gd = graph_def(vec![
        mm_input("x", &[-1, 8, 8, 3]),
        mm_node("fc", "FullyConnected", &["x"], vec![]),
        mm_node(
            "pool",
            "Pool",
            &["x"],
            vec![("pooling_type", a(Value::S("L2".into())))],
        ),
    ]);
    let err = format!("{:#}", import(&gd).unwrap_err());
    assert!(
        err.contains("node 'fc' (FullyConnected): attribute 'units' is missing"),
        "{err}"
    );
    assert!(
        err.contains("node 'pool' (Pool): pooling_type 'L2' is neither MAX nor AVG"),
        "{err}"
    );
}

#[test]
fn depthwise_weights_are_reshaped_through_the_weight_map() {
    let gd = graph_def(vec![
        mm_input("x", &[-1, 5, 5, 2]),
        mm_node(
            "dw",
            "DepthwiseConv",
            &["x:0"],
            vec![
                ("kernel_shape", list_i(&[3, 3, 2, 2])),
                ("strides", list_i(&[1, 1, 1, 1])),
                ("pads", list_i(&[0, 0, 0, 0, 0, 0, 0, 0])),
                ("use_bias", a(Value::B(false))),
            ],
        ),
    ]);
    let (mut g, map) = import(&gd).unwrap();
    assert_eq!(g.node("dw").unwrap().inputs, [TensorRef::new("x", 0)]);
    let values: Vec<f32> = (0..36).map(|i| i as f32).collect();
    let mut mm = MemoryWeights::default();
    mm.insert(
        "dw",
        "weights",
        Tensor::from_f32(vec![3, 3, 2, 2], &values).unwrap(),
    );
    let w = map.wrap(Box::new(mm));
    validate::check(&mut g, Some(&*w)).unwrap();
    assert_eq!(g.node("dw").unwrap().outputs[0].shape, [-1, 3, 3, 4]);
    assert_eq!(w.keys(), [("dw".to_string(), "weights".to_string())]);
    assert_eq!(w.info("dw", "weights").unwrap().shape, [3, 3, 1, 4]);
    let t = w.read("dw", "weights").unwrap();
    assert_eq!(t.info.shape, [3, 3, 1, 4]);
    assert_eq!(t.to_f32(), values, "the bytes are MMdnn's, unchanged");
    assert!(w.read("dw", "bias").is_err());

    // A stored kernel that does not have the shape kernel_shape promises is refused on read.
    let mut bad = MemoryWeights::default();
    bad.insert(
        "dw",
        "weights",
        Tensor::from_f32(vec![3, 3, 4, 1], &values).unwrap(),
    );
    let w = map.wrap(Box::new(bad));
    let err = format!("{:#}", w.read("dw", "weights").unwrap_err());
    assert!(err.contains("weight 'weights' of node 'dw'"), "{err}");
    assert!(err.contains("expected [3, 3, 2, 2]"), "{err}");
}

#[test]
fn recorded_shapes_that_disagree_with_the_mapping_are_reported() {
    // Keras Concatenate([f, f]): MMdnn's parser drops the repeated input, so one input cannot
    // give the recorded 6 columns.
    let shapes = proto::TensorShape {
        dim: [-1, 6]
            .iter()
            .map(|&size| proto::tensor_shape::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    };
    let recorded = a(Value::List(proto::attr_value::ListValue {
        shape: vec![shapes],
        ..Default::default()
    }));
    let gd = graph_def(vec![
        mm_input("f", &[-1, 3]),
        mm_node(
            "cat",
            "Concat",
            &["f"],
            vec![("axis", a(Value::I(1))), ("_output_shapes", recorded)],
        ),
    ]);
    let err = import(&gd).unwrap_err().to_string();
    assert!(
        err.contains(
            "node 'cat' (MMdnn Concat): MMdnn recorded [?, 6] but the mapped Concat gives [?, 3]"
        ),
        "{err}"
    );
}

#[test]
fn constants_from_attributes_become_literal_weights() {
    let gd = graph_def(vec![
        mm_input("x", &[-1, 3]),
        mm_node(
            "c",
            "Constant",
            &[],
            vec![(
                "value",
                a(Value::List(proto::attr_value::ListValue {
                    f: vec![1.0, 2.0, 3.0],
                    ..Default::default()
                })),
            )],
        ),
        mm_node("m", "Mul", &["x", "c", "x"], vec![]),
    ]);
    let (mut g, map) = import(&gd).unwrap();
    let w = map.wrap(Box::new(MemoryWeights::default()));
    validate::check(&mut g, Some(&*w)).unwrap();
    assert_eq!(w.read("c", "value").unwrap().to_f32(), [1.0, 2.0, 3.0]);
    assert_eq!(g.outputs, [TensorRef::new("m", 0)]);
    assert_eq!(g.node("m").unwrap().outputs[0].shape, [-1, 3]);
    assert_eq!(g.nodes.iter().filter(|n| n.op == "Mul").count(), 2);
}

#[test]
fn generated_names_avoid_every_mmdnn_name() {
    // A three-input Add needs one extra node; `m` and `m_1` are MMdnn's, so it is `m_2`.
    let gd = graph_def(vec![
        mm_input("x", &[-1, 3]),
        mm_node("m_1", "Relu", &["x"], vec![]),
        mm_node("m", "Add", &["x", "m_1", "x"], vec![]),
    ]);
    let g = imported(&gd);
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["x", "m_1", "m_2", "m"]);
    assert_eq!(
        node(&g, "m").inputs,
        [TensorRef::new("m_2", 0), TensorRef::new("x", 0)]
    );
}

#[test]
fn nodes_listed_before_their_inputs_are_imported_and_sorted() {
    // Typed as added where the inputs are known; `r` comes before `x` and is typed later, by
    // validation of the sorted graph.
    let gd = graph_def(vec![
        mm_node("r", "Relu", &["x"], vec![]),
        mm_input("x", &[-1, 3]),
        mm_node("s", "Sigmoid", &["x"], vec![]),
    ]);
    let (mut g, _) = import(&gd).unwrap();
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["x", "r", "s"]);
    assert!(node(&g, "r").outputs.is_empty());
    assert_eq!(shape(&g, "s"), [-1, 3]);
    validate::check(&mut g, None).unwrap();
    assert_eq!(shape(&g, "r"), [-1, 3]);
    assert_eq!(g.outputs, [TensorRef::new("r", 0), TensorRef::new("s", 0)]);
}
