//! The ONNX reader: models written by the `onnx` package (tests/fixtures/onnx, with ONNX
//! Runtime's outputs) and small models encoded here, covering op versions, constant folding of
//! shape computations, unknown dims, the unsupported-op listing and external data.
use mmdnn::frontends::{self, Loaded, SourceArgs};
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::AttrValue;
use mmdnn::proto::onnx::{
    attribute_proto::AttributeType, tensor_proto, tensor_shape_proto, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use mmdnn::weights::npy;
use ndarray::{ArrayD, IxDyn};
use prost::Message;
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnx");

// ---- building models ----

fn attr(name: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ..Default::default()
    }
}
fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::Int as i32,
        i: v,
        ..attr(name)
    }
}
fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::Float as i32,
        f: v,
        ..attr(name)
    }
}
fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..attr(name)
    }
}
fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec().into(),
        ..attr(name)
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("n_{}", outputs[0]),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn f32_raw(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: tensor_proto::DataType::Float as i32,
        raw_data: v
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
        ..Default::default()
    }
}
fn i64_typed(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: tensor_proto::DataType::Int64 as i32,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// A dim: a number, or a symbolic name.
enum D {
    N(i64),
    S(&'static str),
}

fn value_info(name: &str, dims: &[D]) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value as V, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                D::N(n) => V::DimValue(*n),
                D::S(s) => V::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: tensor_proto::DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    x: ValueInfoProto,
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "onnx_reader.rs".into(),
        graph: Some(GraphProto {
            output: vec![value_info(nodes.last().map_or("x", |n| &n.output[0]), &[])],
            node: nodes,
            initializer: inits,
            input: vec![x],
            name: "g".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn save(dir: &Path, name: &str, m: &ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    path
}

fn load(path: &Path, shapes: Vec<Vec<i64>>) -> anyhow::Result<Loaded> {
    frontends::load(
        "onnx",
        &SourceArgs {
            network: Some(path.to_path_buf()),
            input_shapes: shapes,
            ..Default::default()
        },
    )
}

fn load_model(m: &ModelProto) -> anyhow::Result<Loaded> {
    let dir = tempfile::tempdir().unwrap();
    load(&save(dir.path(), "m.onnx", m), vec![])
}

fn run(l: &Loaded, x: Value) -> Vec<Value> {
    let name = l.graph.inputs[0].clone();
    Interpreter::new(&l.graph, l.weights.as_ref())
        .run(&[(name, x)])
        .unwrap()
}

fn arange(shape: &[usize]) -> Value {
    let n: usize = shape.iter().product();
    Value::F32(
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|v| v as f32 * 0.1 - 1.0).collect())
            .unwrap(),
    )
}

fn ops(l: &Loaded) -> Vec<String> {
    l.graph.nodes.iter().map(|n| n.op.clone()).collect()
}

fn attr_of(l: &Loaded, op: &str, name: &str) -> AttrValue {
    l.graph
        .nodes
        .iter()
        .find(|n| n.op == op)
        .unwrap_or_else(|| panic!("no {op} node in {:?}", ops(l)))
        .attrs[name]
        .clone()
}

fn err(r: anyhow::Result<Loaded>) -> String {
    match r {
        Ok(_) => panic!("the model loaded"),
        Err(e) => format!("{e:#}"),
    }
}

// ---- models written by the onnx package, against ONNX Runtime ----

fn check_fixture(name: &str) {
    let path = Path::new(FIXTURES).join(format!("{name}.onnx"));
    let l = load(&path, vec![]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let x = Value::from_tensor(&npy::read_file(&path.with_extension("in.npy")).unwrap()).unwrap();
    let outs = run(&l, x);
    assert_eq!(outs.len(), l.graph.outputs.len());
    let mut worst = 0f32;
    for (i, got) in outs.iter().enumerate() {
        let file = Path::new(FIXTURES).join(format!("{name}.ref{i}.npy"));
        let want = Value::from_tensor(&npy::read_file(&file).unwrap()).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name} output {i}");
        let (g, w) = (got.to_f32(), want.to_f32());
        for (a, b) in g.iter().zip(w.iter()) {
            let d = (a - b).abs();
            assert!(
                d <= 1e-4 * b.abs().max(1.0),
                "{name} output {i}: {a} vs {b}"
            );
            worst = worst.max(d);
        }
    }
    eprintln!("{name}: {} outputs, max |Δ| {worst:e}", outs.len());
}

#[test]
fn fixtures_match_onnxruntime() {
    for name in [
        "cnn_op7",
        "transformer_op13_symbolic_batch",
        "zoo_op11",
        "zoo_op21",
        "zoo2_op18",
        "resize_op13",
        "recurrent_op14",
        "external/model",
    ] {
        check_fixture(name);
    }
}

#[test]
fn symbolic_batch_stays_unknown_and_transformer_reshapes_copy_it() {
    let path = Path::new(FIXTURES).join("transformer_op13_symbolic_batch.onnx");
    let l = load(&path, vec![]).unwrap();
    let x = l.graph.node("x").unwrap();
    assert_eq!(x.attrs["shape"], AttrValue::Shape(vec![-1, 6, 16]));
    // Shape -> Gather -> Unsqueeze -> Concat chains are folded; the batch entry is a copy.
    assert!(
        !ops(&l).iter().any(|o| o == "Shape" || o == "Concat"),
        "{:?}",
        ops(&l)
    );
    let reshapes: Vec<_> = l.graph.nodes.iter().filter(|n| n.op == "Reshape").collect();
    assert_eq!(
        reshapes[0].attrs["shape"],
        AttrValue::Ints(vec![0, 6, 3, 2, 8])
    );
    assert_eq!(reshapes[1].attrs["shape"], AttrValue::Ints(vec![0, 6, 16]));
    // --inputShape (batch excluded) keeps the batch unknown and checks the rest.
    assert!(load(&path, vec![vec![6, 16]]).is_ok());
    let e = err(load(&path, vec![vec![7, 16]]));
    assert!(e.contains("conflicts with its declared dim 6"), "{e}");
}

// ---- folding and unknown dims ----

/// x -> Reshape(x, Concat(Gather(Shape(x), i) for i in order)), as exporters write it.
fn shape_chain(order: &[i64], x: ValueInfoProto, opset: i64) -> ModelProto {
    let mut nodes = vec![node("Shape", &["x"], &["s"], vec![])];
    let mut inits = vec![];
    let mut parts = vec![];
    for (k, &i) in order.iter().enumerate() {
        let (idx, g, u) = (format!("i{k}"), format!("g{k}"), format!("u{k}"));
        inits.push(i64_typed(&idx, &[], &[i]));
        nodes.push(node("Gather", &["s", &idx], &[&g], vec![attr_i("axis", 0)]));
        nodes.push(if opset >= 13 {
            inits.push(i64_typed(&format!("ax{k}"), &[1], &[0]));
            node("Unsqueeze", &[&g, &format!("ax{k}")], &[&u], vec![])
        } else {
            node("Unsqueeze", &[&g], &[&u], vec![attr_ints("axes", &[0])])
        });
        parts.push(u);
    }
    inits.push(i64_typed("minus1", &[1], &[-1]));
    parts.push("minus1".into());
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    nodes.push(node("Concat", &parts, &["target"], vec![attr_i("axis", 0)]));
    nodes.push(node("Reshape", &["x", "target"], &["y"], vec![]));
    model(opset, nodes, inits, x)
}

#[test]
fn shape_computations_fold_into_attributes() {
    let m = shape_chain(&[0], value_info("x", &[D::N(2), D::N(3), D::N(4)]), 13);
    let l = load_model(&m).unwrap();
    assert_eq!(ops(&l), ["DataInput", "Reshape"]);
    assert_eq!(
        attr_of(&l, "Reshape", "shape"),
        AttrValue::Ints(vec![2, -1])
    );
    let y = run(&l, arange(&[2, 3, 4]));
    assert_eq!(y[0].shape(), [2, 12]);
    // Opset 11 (Unsqueeze axes as an attribute) gives the same graph.
    let l = load_model(&shape_chain(
        &[0],
        value_info("x", &[D::N(2), D::N(3), D::N(4)]),
        11,
    ))
    .unwrap();
    assert_eq!(
        attr_of(&l, "Reshape", "shape"),
        AttrValue::Ints(vec![2, -1])
    );
}

#[test]
fn unknown_dims_copy_or_infer_else_ask_for_input_shape() {
    // [N, -1] with N the input's own dim 0: a copy.
    let x = || value_info("x", &[D::S("N"), D::S("C"), D::N(4)]);
    let l = load_model(&shape_chain(&[0], x(), 13)).unwrap();
    assert_eq!(
        attr_of(&l, "Reshape", "shape"),
        AttrValue::Ints(vec![0, -1])
    );
    assert_eq!(run(&l, arange(&[5, 3, 4]))[0].shape(), [5, 12]);
    // [C, N, -1]: neither is the input's dim at its position, and there is a -1 already.
    let m = shape_chain(&[1, 0], x(), 13);
    let e = err(load_model(&m));
    assert!(e.contains("--inputShape") && e.contains("Reshape"), "{e}");
    // With C pinned (batch excluded), only N is open: it becomes the inferred dim... but the
    // target has a -1 already, so N must stay a copy: it is at position 1, not 0 — refused.
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "m.onnx", &m);
    let e = err(load(&path, vec![vec![3, 4]]));
    assert!(e.contains("--inputShape"), "{e}");
    // [C, N] without -1: one open entry, which becomes the inferred one.
    let mut m = shape_chain(&[1, 0], x(), 13);
    let g = m.graph.as_mut().unwrap();
    g.node
        .iter_mut()
        .find(|n| n.op_type == "Concat")
        .unwrap()
        .input
        .pop();
    let path = save(dir.path(), "m2.onnx", &m);
    let l = load(&path, vec![vec![3, 4]]).unwrap();
    assert_eq!(
        attr_of(&l, "Reshape", "shape"),
        AttrValue::Ints(vec![3, -1])
    );
    let x = l.graph.node("x").unwrap();
    assert_eq!(x.attrs["shape"], AttrValue::Shape(vec![-1, 3, 4]));
    assert_eq!(run(&l, arange(&[2, 3, 4]))[0].shape(), [3, 8]);
}

#[test]
fn constant_operands_become_constant_nodes_and_gemm_a_fully_connected_layer() {
    let w: Vec<f32> = (0..6).map(|v| v as f32).collect(); // [out 2, in 3] with transB
    let m = model(
        13,
        vec![
            node("Gemm", &["x", "w", "b"], &["h"], vec![attr_i("transB", 1)]),
            node("Add", &["h", "c"], &["y"], vec![]),
        ],
        vec![
            f32_raw("w", &[2, 3], &w),
            f32_raw("b", &[2], &[0.5, -0.5]),
            f32_raw("c", &[1], &[10.0]),
        ],
        value_info("x", &[D::S("N"), D::N(3)]),
    );
    let l = load_model(&m).unwrap();
    assert_eq!(ops(&l), ["DataInput", "FullyConnected", "Constant", "Add"]);
    let fc = l.weights.read("h", "weights").unwrap();
    assert_eq!(fc.info.shape, [3, 2]);
    assert_eq!(fc.to_f32(), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let y = run(
        &l,
        Value::F32(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, 1.0, 1.0]).unwrap()),
    );
    assert_eq!(
        y[0].to_f32().iter().copied().collect::<Vec<_>>(),
        [13.5, 21.5]
    );
}

// ---- op versions ----

fn one_op(opset: i64, n: NodeProto, inits: Vec<TensorProto>, dims: &[i64]) -> Loaded {
    let dims: Vec<D> = dims.iter().map(|&d| D::N(d)).collect();
    load_model(&model(opset, vec![n], inits, value_info("x", &dims))).unwrap()
}

fn f32_value(shape: &[usize], v: &[f32]) -> Value {
    Value::F32(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap())
}

#[test]
fn pad_wrap_and_space_to_depth_crd_become_tile_slice_and_reshape_transpose() {
    let x = f32_value(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let wrap = |pads: &[i64]| {
        one_op(
            19,
            node("Pad", &["x", "p"], &["y"], vec![attr_s("mode", "wrap")]),
            vec![i64_typed("p", &[4], pads)],
            &[2, 3],
        )
    };
    // Output (i, j) reads input ((i − 0) mod 2, (j − 2) mod 3), worked out by hand.
    let l = wrap(&[0, 2, 1, 4]);
    assert_eq!(ops(&l), ["DataInput", "Tile", "Slice"]);
    let r0 = [1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0];
    let r1 = [4.0, 5.0, 3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 3.0];
    let want: Vec<f32> = r0.iter().chain(&r1).chain(&r0).copied().collect();
    assert_eq!(run(&l, x.clone()), [f32_value(&[3, 9], &want)]);
    // A negative pad crops.
    let l = wrap(&[0, -1, 0, 0]);
    assert_eq!(run(&l, x), [f32_value(&[2, 2], &[1.0, 2.0, 4.0, 5.0])]);

    // x[c, h, w] = 4c + 2h + w, blocksize 2: CRD puts channel c·4 + h·2 + w, DCR (h·2 + w)·2 + c.
    let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
    let s2d = |mode: &str| {
        let n = node(
            "SpaceToDepth",
            &["x"],
            &["y"],
            vec![attr_i("blocksize", 2), attr_s("mode", mode)],
        );
        let l = one_op(25, n, vec![], &[1, 2, 2, 2]);
        let y = run(&l, f32_value(&[1, 2, 2, 2], &x));
        (ops(&l), y)
    };
    let (o, y) = s2d("CRD");
    assert_eq!(o, ["DataInput", "Reshape", "Transpose", "Reshape"]);
    assert_eq!(y, [f32_value(&[1, 8, 1, 1], &x)]);
    let (o, y) = s2d("DCR");
    assert_eq!(o, ["DataInput", "SpaceToDepth"]);
    let dcr = [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0];
    assert_eq!(y, [f32_value(&[1, 8, 1, 1], &dcr)]);
}

#[test]
fn resize_keep_aspect_ratio_policy_resolves_to_sizes_or_scales() {
    let resize = |dims: &[i64], sizes: &[i64], policy: &str| {
        let m = model(
            18,
            vec![node(
                "Resize",
                &["x", "", "", "s"],
                &["y"],
                vec![
                    attr_ints("axes", &[2, 3]),
                    attr_s("keep_aspect_ratio_policy", policy),
                ],
            )],
            vec![i64_typed("s", &[2], sizes)],
            value_info("x", &dims.iter().map(|&d| D::N(d)).collect::<Vec<_>>()),
        );
        load_model(&m)
    };
    // 2×4 to at most 1×3: scale min(1/2, 3/4) = 1/2, sizes 1×2.
    let l = resize(&[1, 1, 2, 4], &[1, 3], "not_larger").unwrap();
    assert_eq!(attr_of(&l, "Resize", "sizes"), AttrValue::Ints(vec![1, 2]));
    // 2×2 to at least 7×8: scale max(7/2, 8/2) = 4, sizes 8×8.
    let l = resize(&[1, 1, 2, 2], &[7, 8], "not_smaller").unwrap();
    assert_eq!(attr_of(&l, "Resize", "sizes"), AttrValue::Ints(vec![8, 8]));
    // 3×5 to at most 2×9: scale 2/3, sizes 2 × round(3.33) = 3; as a scale, floor(5 · 2/3) = 3.
    let l = resize(&[1, 1, 3, 5], &[2, 9], "not_larger").unwrap();
    assert_eq!(
        attr_of(&l, "Resize", "scales"),
        AttrValue::Floats(vec![2.0 / 3.0, 2.0 / 3.0])
    );
    // 2×4 to at least 1×3: scale 3/4, sizes round(1.5) = 2 × 3: neither form reproduces both.
    let e = err(resize(&[1, 1, 2, 4], &[1, 3], "not_smaller"));
    assert!(e.contains("cannot both reproduce"), "{e}");
}

#[test]
fn training_batch_norm_uses_the_batch_statistics_and_updates_the_running_ones() {
    let n = node(
        "BatchNormalization",
        &["x", "s", "b", "m", "v"],
        &["y", "rm", "rv"],
        vec![attr_i("training_mode", 1), attr_f("epsilon", 0.0)],
    );
    let mut m = model(
        15,
        vec![n],
        vec![
            f32_raw("s", &[1], &[2.0]),
            f32_raw("b", &[1], &[0.5]),
            f32_raw("m", &[1], &[0.0]),
            f32_raw("v", &[1], &[1.0]),
        ],
        value_info("x", &[D::N(2), D::N(1)]),
    );
    for name in ["rm", "rv"] {
        m.graph.as_mut().unwrap().output.push(ValueInfoProto {
            name: name.into(),
            ..Default::default()
        });
    }
    let l = load_model(&m).unwrap();
    // Batch [1, 3]: mean 2, population variance 1, so y = (x − 2) · 2 + 0.5; running
    // statistics with momentum 0.9: 0 · 0.9 + 2 · 0.1 and 1 · 0.9 + 1 · 0.1.
    let got = run(&l, f32_value(&[2, 1], &[1.0, 3.0]));
    assert_eq!(got[0], f32_value(&[2, 1], &[-1.5, 2.5]));
    let close = |v: &Value, want: f32| {
        let a = v.as_f32().unwrap();
        assert_eq!(a.shape(), [1]);
        assert!((a[[0]] - want).abs() < 1e-6, "{a} vs {want}");
    };
    close(&got[1], 0.2);
    close(&got[2], 1.0);
}

#[test]
fn einsum_takes_diagonals_of_repeated_labels() {
    let einsum = |eq: &str| {
        let n = node("Einsum", &["x"], &["y"], vec![attr_s("equation", eq)]);
        one_op(12, n, vec![], &[2, 2, 2])
    };
    // x[b] = [[1, 2], [3, 4]] + 10·b.
    let x = f32_value(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 11.0, 12.0, 13.0, 14.0]);
    let l = einsum("...ii->...i");
    assert_eq!(
        run(&l, x.clone()),
        [f32_value(&[2, 2], &[1.0, 4.0, 11.0, 14.0])]
    );
    // Implicit output: the repeated label is summed (the trace).
    assert_eq!(run(&einsum("bii"), x), [f32_value(&[2], &[5.0, 25.0])]);
}

#[test]
fn training_dropout_is_the_identity_only_with_ratio_0() {
    let t = TensorProto {
        name: "t".into(),
        data_type: tensor_proto::DataType::Bool as i32,
        int32_data: vec![1],
        ..Default::default()
    };
    let dropout = |ratio: f32| {
        let m = model(
            22,
            vec![node("Dropout", &["x", "r", "t"], &["y"], vec![])],
            vec![f32_raw("r", &[], &[ratio]), t.clone()],
            value_info("x", &[D::N(2), D::N(2)]),
        );
        load_model(&m)
    };
    let l = dropout(0.0).unwrap();
    assert_eq!(ops(&l), ["DataInput", "Identity"]);
    let e = err(dropout(0.25));
    assert!(e.contains("training_mode is true with ratio 0.25"), "{e}");
}

#[test]
fn slice_squeeze_split_clip_follow_their_opset() {
    // Slice: attributes (opset 9), inputs with steps (10).
    let l = one_op(
        9,
        node(
            "Slice",
            &["x"],
            &["y"],
            vec![
                attr_ints("starts", &[1]),
                attr_ints("ends", &[3]),
                attr_ints("axes", &[1]),
            ],
        ),
        vec![],
        &[2, 4],
    );
    assert_eq!(attr_of(&l, "Slice", "starts"), AttrValue::Ints(vec![1]));
    let l = one_op(
        10,
        node("Slice", &["x", "s", "e", "a", "st"], &["y"], vec![]),
        vec![
            i64_typed("s", &[1], &[-1]),
            i64_typed("e", &[1], &[-100]),
            i64_typed("a", &[1], &[1]),
            i64_typed("st", &[1], &[-2]),
        ],
        &[2, 4],
    );
    assert_eq!(run(&l, arange(&[2, 4]))[0].shape(), [2, 2]);
    // Squeeze: axes attribute (11), input (13).
    let l = one_op(
        11,
        node("Squeeze", &["x"], &["y"], vec![attr_ints("axes", &[1])]),
        vec![],
        &[2, 1, 3],
    );
    assert_eq!(attr_of(&l, "Squeeze", "axes"), AttrValue::Ints(vec![1]));
    let l = one_op(
        13,
        node("Squeeze", &["x", "a"], &["y"], vec![]),
        vec![i64_typed("a", &[1], &[-2])],
        &[2, 1, 3],
    );
    assert_eq!(attr_of(&l, "Squeeze", "axes"), AttrValue::Ints(vec![-2]));
    // Split: attribute (11), input (13), num_outputs (18, the last part smaller).
    let split = |inputs: &[&str], attrs| node("Split", inputs, &["a", "b", "c"], attrs);
    let l = one_op(
        11,
        split(
            &["x"],
            vec![attr_ints("split", &[1, 2, 4]), attr_i("axis", 1)],
        ),
        vec![],
        &[2, 7],
    );
    assert_eq!(
        attr_of(&l, "Split", "split"),
        AttrValue::Ints(vec![1, 2, 4])
    );
    let l = one_op(
        13,
        split(&["x", "s"], vec![attr_i("axis", 1)]),
        vec![i64_typed("s", &[3], &[3, 3, 1])],
        &[2, 7],
    );
    assert_eq!(
        attr_of(&l, "Split", "split"),
        AttrValue::Ints(vec![3, 3, 1])
    );
    let l = one_op(
        18,
        split(&["x"], vec![attr_i("axis", 1), attr_i("num_outputs", 3)]),
        vec![],
        &[2, 7],
    );
    assert_eq!(
        attr_of(&l, "Split", "split"),
        AttrValue::Ints(vec![3, 3, 1])
    );
    // Clip: attributes (7), inputs (11); a missing bound stays open.
    let l = one_op(
        7,
        node(
            "Clip",
            &["x"],
            &["y"],
            vec![attr_f("min", -0.5), attr_f("max", 0.5)],
        ),
        vec![],
        &[4],
    );
    assert_eq!(attr_of(&l, "Clip", "max"), AttrValue::Float(0.5));
    let l = one_op(
        11,
        node("Clip", &["x", "", "hi"], &["y"], vec![]),
        vec![f32_raw("hi", &[], &[0.25])],
        &[4],
    );
    let clip = l.graph.node("y").unwrap();
    assert_eq!(clip.attrs.get("max"), Some(&AttrValue::Float(0.25)));
    assert_eq!(clip.attrs.get("min"), None);
}

#[test]
fn softmax_before_opset_13_covers_the_trailing_axes() {
    let n = || node("Softmax", &["x"], &["y"], vec![attr_i("axis", 1)]);
    let l = one_op(11, n(), vec![], &[2, 3, 4]);
    assert_eq!(ops(&l), ["DataInput", "Flatten", "Softmax", "Reshape"]);
    let y = run(&l, arange(&[2, 3, 4]))[0].to_f32();
    let first: f32 = y.iter().take(12).sum();
    assert!((first - 1.0).abs() < 1e-5, "sums over 12 values: {first}");
    let l = one_op(13, n(), vec![], &[2, 3, 4]);
    assert_eq!(ops(&l), ["DataInput", "Softmax"]);
    assert_eq!(attr_of(&l, "Softmax", "axis"), AttrValue::Int(1));
}

#[test]
fn auto_pad_same_is_resolved_from_the_input_dims() {
    let w = f32_raw("w", &[2, 1, 3, 3], &[0.1; 18]);
    let n = node(
        "Conv",
        &["x", "w"],
        &["y"],
        vec![
            attr_s("auto_pad", "SAME_UPPER"),
            attr_ints("strides", &[2, 2]),
            attr_i("group", 2),
        ],
    );
    let l = one_op(13, n, vec![w], &[1, 2, 6, 5]);
    // 6 -> 3 needs 1 pad (0 before, 1 after); 5 -> 3 needs 2 (1, 1).
    assert_eq!(
        attr_of(&l, "Conv", "pads"),
        AttrValue::Ints(vec![0, 1, 1, 1])
    );
    assert_eq!(l.graph.node("y").unwrap().outputs[0].shape, [1, 2, 3, 3]);
}

// ---- refusals ----

#[test]
fn every_unsupported_op_is_listed_in_one_error() {
    let mut nms = node("NonMaxSuppression", &["x"], &["a"], vec![]);
    nms.name = "nms_1".into();
    let mut nms2 = node("NonMaxSuppression", &["x"], &["b"], vec![]);
    nms2.name = "nms_2".into();
    let mut fused = node("FusedConv", &["x"], &["c"], vec![]);
    fused.domain = "com.microsoft".into();
    let lp = node("Loop", &["x"], &["d"], vec![]);
    let mut m = model(
        17,
        vec![node("Relu", &["x"], &["r"], vec![]), nms, fused, lp, nms2],
        vec![],
        value_info("x", &[D::N(1)]),
    );
    m.opset_import.push(OperatorSetIdProto {
        domain: "com.microsoft".into(),
        version: 1,
    });
    let e = err(load_model(&m));
    assert!(
        e.contains("4 nodes use ops the ONNX reader does not support"),
        "{e}"
    );
    assert!(
        e.contains("NonMaxSuppression (domain ai.onnx, opset 17): 'nms_1', 'nms_2'"),
        "{e}"
    );
    assert!(
        e.contains("FusedConv (domain com.microsoft, opset 1): 'n_c'"),
        "{e}"
    );
    assert!(
        e.contains("Loop (domain ai.onnx, opset 17) (control flow with subgraphs): 'n_d'"),
        "{e}"
    );
    assert!(!e.contains("Relu"), "{e}");
}

#[test]
fn unsupported_attributes_and_unmapped_outputs_are_reported_per_node() {
    let m = model(
        13,
        vec![
            node("Relu", &["x"], &["r"], vec![attr_i("frobnicate", 1)]),
            node(
                "MaxPool",
                &["x"],
                &["p", "idx"],
                vec![attr_ints("kernel_shape", &[2])],
            ),
            node("Add", &["p", "idx"], &["y"], vec![]),
        ],
        vec![],
        value_info("x", &[D::N(1), D::N(1), D::N(4)]),
    );
    let e = err(load_model(&m));
    assert!(
        e.contains("'n_r' (Relu opset 13): unsupported attribute frobnicate"),
        "{e}"
    );
    assert!(e.contains("output 1 ('idx') is used"), "{e}");
    assert!(e.contains("could not be converted (2 problems)"), "{e}");
}

#[test]
fn opsets_outside_7_to_28_are_refused_unless_every_op_is_as_at_7() {
    // Relu's opset-7 definition dates from opset 6; before, it had consumed_inputs.
    let relu = |opset| {
        model(
            opset,
            vec![node("Relu", &["x"], &["y"], vec![])],
            vec![],
            value_info("x", &[D::N(1)]),
        )
    };
    assert_eq!(ops(&load_model(&relu(6)).unwrap()), ["DataInput", "Relu"]);
    let e = err(load_model(&relu(5)));
    assert!(e.contains("mmdnn reads opsets 7 to 28"), "{e}");
    assert!(e.contains("which Relu is not"), "{e}");
    // Not has had one definition since opset 1.
    let mut x = value_info("x", &[D::N(2)]);
    if let Some(type_proto::Value::TensorType(t)) = x.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = tensor_proto::DataType::Bool as i32;
    }
    let mut m = model(1, vec![node("Not", &["x"], &["y"], vec![])], vec![], x);
    m.graph.as_mut().unwrap().output.clear();
    m.graph.as_mut().unwrap().output.push(ValueInfoProto {
        name: "y".into(),
        ..Default::default()
    });
    let l = load_model(&m).unwrap();
    let x = Value::Bool(ndarray::arr1(&[true, false]).into_dyn());
    assert_eq!(
        run(&l, x),
        [Value::Bool(ndarray::arr1(&[false, true]).into_dyn())]
    );
    let m = model(
        29,
        vec![node("Relu", &["x"], &["y"], vec![])],
        vec![],
        value_info("x", &[D::N(1)]),
    );
    assert!(err(load_model(&m)).contains("uses opset 29"));
}

// ---- external data ----

fn external(location: &str, offset: usize) -> ModelProto {
    let w = TensorProto {
        name: "w".into(),
        dims: vec![4],
        data_type: tensor_proto::DataType::Float as i32,
        data_location: tensor_proto::DataLocation::External as i32,
        external_data: [
            ("location", location.to_string()),
            ("offset", offset.to_string()),
            ("length", "16".into()),
        ]
        .into_iter()
        .map(|(k, v)| StringStringEntryProto {
            key: k.into(),
            value: v,
        })
        .collect(),
        ..Default::default()
    };
    model(
        13,
        vec![node("Mul", &["x", "w"], &["y"], vec![])],
        vec![w],
        value_info("x", &[D::N(4)]),
    )
}

#[test]
fn external_data_is_read_from_the_models_directory_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    let data: Vec<u8> = [0f32, 0.0, 1.0, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(dir.join("w.bin"), &data).unwrap();
    std::fs::write(root.path().join("outside.bin"), &data).unwrap();

    let l = load(&save(&dir, "ok.onnx", &external("w.bin", 8)), vec![]).unwrap();
    let y = run(&l, Value::F32(ArrayD::from_elem(IxDyn(&[4]), 2.0)));
    assert_eq!(
        y[0].to_f32().iter().copied().collect::<Vec<_>>(),
        [2.0, 4.0, 6.0, 8.0]
    );

    for bad in [
        "../outside.bin",
        "./../model/w.bin",
        &root.path().join("outside.bin").display().to_string(),
    ] {
        let e = err(load(&save(&dir, "bad.onnx", &external(bad, 0)), vec![]));
        assert!(e.contains("is refused"), "{bad}: {e}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.path().join("outside.bin"), dir.join("link.bin")).unwrap();
        let e = err(load(
            &save(&dir, "link.onnx", &external("link.bin", 0)),
            vec![],
        ));
        assert!(e.contains("outside the model's directory"), "{e}");
    }
    let e = err(load(
        &save(&dir, "short.onnx", &external("w.bin", 12)),
        vec![],
    ));
    assert!(
        e.contains("has 24 bytes; the tensor needs bytes 12..28"),
        "{e}"
    );
    let e = err(load(
        &save(&dir, "missing.onnx", &external("nope.bin", 0)),
        vec![],
    ));
    assert!(e.contains("cannot open external data file"), "{e}");
}

#[test]
fn dst_node_name_picks_outputs_and_reads_only_what_they_need() {
    let mut m = model(
        13,
        vec![
            node("Relu", &["x"], &["r"], vec![]),
            node("TopK", &["r", "k"], &["v", "i"], vec![]),
            node("Sigmoid", &["r"], &["y"], vec![]),
        ],
        vec![i64_typed("k", &[1], &[2])],
        value_info("x", &[D::N(4)]),
    );
    m.graph.as_mut().unwrap().output = vec![value_info("v", &[]), value_info("y", &[])];
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "m.onnx", &m);
    assert!(err(load(&path, vec![])).contains("TopK"));
    let args = |dst: &[&str]| SourceArgs {
        network: Some(path.clone()),
        dst_nodes: dst.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let l = frontends::load("onnx", &args(&["y"])).unwrap();
    assert_eq!(ops(&l), ["DataInput", "Relu", "Sigmoid"]);
    assert_eq!(l.graph.outputs.len(), 1);
    let e = err(frontends::load("onnx", &args(&["nope"])));
    assert!(e.contains("'nope' is not a value of the model"), "{e}");
}

#[test]
fn zeros_like_an_input_of_unknown_shape_is_refused_without_allocating_it() {
    let m = model(
        13,
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("ConstantOfShape", &["s"], &["z"], vec![]),
            node("Add", &["x", "z"], &["y"], vec![]),
        ],
        vec![],
        value_info("x", &[D::S("N"), D::N(3), D::N(224), D::N(224)]),
    );
    let e = err(load_model(&m));
    assert!(
        e.contains("'n_z' (ConstantOfShape opset 13)") && e.contains("--inputShape"),
        "{e}"
    );
}

#[test]
fn int4_initializers_are_unpacked() {
    // INT4 [1, −1, 7] packed low nibble first: 0xF1, 0x07; as raw_data or in int32_data.
    let raw = TensorProto {
        name: "w".into(),
        dims: vec![3],
        data_type: tensor_proto::DataType::Int4 as i32,
        raw_data: vec![0xf1, 0x07].into(),
        ..Default::default()
    };
    let typed = TensorProto {
        raw_data: Default::default(),
        int32_data: vec![0xf1, 0x07],
        ..raw.clone()
    };
    for w in [raw, typed] {
        let m = model(
            21,
            vec![
                node("Cast", &["w"], &["wf"], vec![attr_i("to", 1)]),
                node("Add", &["x", "wf"], &["y"], vec![]),
            ],
            vec![w],
            value_info("x", &[D::N(3)]),
        );
        let l = load_model(&m).unwrap();
        let y = run(&l, arange(&[3]));
        let y: Vec<f32> = y[0].as_f32().unwrap().iter().copied().collect();
        for (got, want) in y.iter().zip([-1.0 + 1.0, -0.9 - 1.0, -0.8 + 7.0]) {
            assert!((got - want).abs() < 1e-6, "{y:?}");
        }
    }
}
