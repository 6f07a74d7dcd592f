//! The interpreter as a graph executor: ordering, pruning, intermediate values, input checks,
//! multi-output ops, error context and Value <-> Tensor conversion.
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::graph::{Graph, Node};
use mmdnn::ir::types::AttrValue;
use mmdnn::ir::{DType, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor};
use ndarray::{arr1, arr2, ArrayD, IxDyn};

fn input(name: &str, dtype: DType, shape: &[i64]) -> Node {
    Node::new(name, "DataInput")
        .with_attr("dtype", AttrValue::Type(dtype))
        .with_attr("shape", AttrValue::Shape(shape.to_vec()))
}

fn r(name: &str) -> TensorRef {
    TensorRef::new(name, 0)
}

fn f32s(shape: &[usize], v: &[f32]) -> Value {
    Value::F32(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap())
}

/// x → FullyConnected → Relu → Add(·, x) → out, plus a dead node that would fail.
fn small_graph() -> (Graph, MemoryWeights) {
    let mut g = Graph::default();
    g.add(input("x", DType::F32, &[-1, 2])).unwrap();
    g.add(
        Node::new("fc", "FullyConnected")
            .with_inputs([r("x")])
            .with_attr("units", AttrValue::Int(2)),
    )
    .unwrap();
    g.add(Node::new("relu", "Relu").with_inputs([r("fc")]))
        .unwrap();
    g.add(Node::new("add", "Add").with_inputs([r("relu"), r("x")]))
        .unwrap();
    g.add(
        Node::new("dead", "Reshape")
            .with_inputs([r("x")])
            .with_attr("shape", AttrValue::Ints(vec![7])),
    )
    .unwrap();
    g.inputs = vec!["x".into()];
    g.outputs = vec![r("add"), r("relu")];
    let mut w = MemoryWeights::default();
    w.insert(
        "fc",
        "weights",
        Tensor::from_f32(vec![2, 2], &[1.0, -1.0, 2.0, 0.5]).unwrap(),
    );
    (g, w)
}

#[test]
fn run_computes_outputs_and_prunes_unused_nodes() {
    let (g, w) = small_graph();
    let x = f32s(&[1, 2], &[1.0, 2.0]);
    let out = Interpreter::new(&g, &w).run(&[("x".into(), x)]).unwrap();
    // fc = [1·1 + 2·2, 1·(−1) + 2·0.5] = [5, 0]; relu = [5, 0]; add = [6, 2].
    assert_eq!(out[0], Value::F32(arr2(&[[6.0f32, 2.0]]).into_dyn()));
    assert_eq!(out[1], Value::F32(arr2(&[[5.0f32, 0.0]]).into_dyn()));
}

#[test]
fn run_all_reports_every_node_and_names_the_failing_one() {
    let (mut g, w) = small_graph();
    let x = f32s(&[1, 2], &[1.0, 2.0]);
    let mut seen = Vec::new();
    let err = Interpreter::new(&g, &w)
        .run_all(&[("x".into(), x.clone())], &mut |n, v| {
            seen.push((n.name.clone(), v.len()))
        })
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("node 'dead' (Reshape)"), "{msg}");
    // Without the dead node every node is reported once, in order, with its outputs.
    g.nodes.retain(|n| n.name != "dead");
    let mut seen = Vec::new();
    let out = Interpreter::new(&g, &w)
        .run_all(&[("x".into(), x)], &mut |n, v| {
            seen.push((n.name.clone(), v[0].clone()))
        })
        .unwrap();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x", "fc", "relu", "add"]);
    assert_eq!(seen[1].1, Value::F32(arr2(&[[5.0f32, 0.0]]).into_dyn()));
    assert_eq!(out[0], seen[3].1);
}

#[test]
fn nodes_out_of_order_still_run() {
    let (mut g, w) = small_graph();
    g.nodes.reverse();
    let out = Interpreter::new(&g, &w)
        .run(&[("x".into(), f32s(&[1, 2], &[1.0, 2.0]))])
        .unwrap();
    assert_eq!(out[0], Value::F32(arr2(&[[6.0f32, 2.0]]).into_dyn()));
}

#[test]
fn inputs_are_checked() {
    let (g, w) = small_graph();
    let it = Interpreter::new(&g, &w);
    let msg = |e: anyhow::Error| format!("{e:#}");
    let e = msg(it.run(&[]).unwrap_err());
    assert!(e.contains("'x' was not given a value"), "{e}");
    let e = msg(it
        .run(&[
            ("x".into(), f32s(&[1, 2], &[0.0; 2])),
            ("y".into(), f32s(&[1], &[0.0])),
        ])
        .unwrap_err());
    assert!(e.contains("'y' is not an input"), "{e}");
    let e = msg(it
        .run(&[("x".into(), Value::I64(arr2(&[[1i64, 2]]).into_dyn()))])
        .unwrap_err());
    assert!(e.contains("declares float32"), "{e}");
    let e = msg(it.run(&[("x".into(), f32s(&[2], &[0.0; 2]))]).unwrap_err());
    assert!(e.contains("shape [2]"), "{e}");
    // The unknown batch dim accepts any size.
    let out = it.run(&[("x".into(), f32s(&[3, 2], &[1.0; 6]))]).unwrap();
    assert_eq!(out[0].shape(), [3, 2]);
}

#[test]
fn multi_output_ops_and_repeated_uses() {
    let mut g = Graph::default();
    g.add(input("x", DType::F32, &[4])).unwrap();
    g.add(
        Node::new("split", "Split")
            .with_inputs([r("x")])
            .with_attr("split", AttrValue::Ints(vec![1, 3])),
    )
    .unwrap();
    // The same tensor twice in one node, and a tensor that is also a graph output.
    g.add(
        Node::new("sq", "Mul")
            .with_inputs([TensorRef::new("split", 1), TensorRef::new("split", 1)]),
    )
    .unwrap();
    g.inputs = vec!["x".into()];
    g.outputs = vec![
        r("sq"),
        TensorRef::new("split", 1),
        TensorRef::new("split", 1),
    ];
    let w = MemoryWeights::default();
    let out = Interpreter::new(&g, &w)
        .run(&[("x".into(), f32s(&[4], &[1.0, 2.0, 3.0, 4.0]))])
        .unwrap();
    assert_eq!(out[0], Value::F32(arr1(&[4.0f32, 9.0, 16.0]).into_dyn()));
    assert_eq!(out[1], Value::F32(arr1(&[2.0f32, 3.0, 4.0]).into_dyn()));
    assert_eq!(out[1], out[2]);
}

#[test]
fn weights_are_cached_or_not_with_the_same_results() {
    let (g, w) = small_graph();
    let x = vec![("x".to_string(), f32s(&[2, 2], &[1.0, -2.0, 0.5, 3.0]))];
    let cached = Interpreter::new(&g, &w);
    let a = cached.run(&x).unwrap();
    let b = cached.run(&x).unwrap();
    let c = Interpreter::new(&g, &w)
        .without_weight_cache()
        .run(&x)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn missing_weight_and_unknown_op_name_the_node() {
    let (g, _) = small_graph();
    let e = Interpreter::new(&g, &MemoryWeights::default())
        .run(&[("x".into(), f32s(&[1, 2], &[0.0; 2]))])
        .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("node 'fc' (FullyConnected)") && e.contains("weights"),
        "{e}"
    );
    let mut g = Graph::default();
    g.add(input("x", DType::F32, &[1])).unwrap();
    g.add(Node::new("u", "NoSuchOp").with_inputs([r("x")]))
        .unwrap();
    g.inputs = vec!["x".into()];
    g.outputs = vec![r("u")];
    let e = Interpreter::new(&g, &MemoryWeights::default())
        .run(&[("x".into(), f32s(&[1], &[0.0]))])
        .unwrap_err();
    assert!(format!("{e:#}").contains("'u'"), "{e:#}");
}

#[test]
fn values_convert_to_and_from_tensors() {
    let ints: Vec<(DType, Vec<i64>)> = vec![
        (DType::I8, vec![-128, 0, 127]),
        (DType::U8, vec![0, 200, 255]),
        (DType::I16, vec![-30000, 1, 2]),
        (DType::U16, vec![65535, 0, 7]),
        (DType::I32, vec![i32::MIN as i64, 0, 5]),
        (DType::U32, vec![u32::MAX as i64, 1, 2]),
        (DType::I64, vec![i64::MIN, -1, i64::MAX]),
        (DType::U64, vec![0, 1, 1 << 62]),
    ];
    for (dt, v) in ints {
        let val = Value::I64(arr1(&v).into_dyn());
        let t = val.to_tensor(dt).unwrap();
        assert_eq!(t.info.dtype, dt);
        assert_eq!(Value::from_tensor(&t).unwrap(), val, "{dt}");
    }
    let too_big = Value::I64(arr1(&[256i64]).into_dyn());
    assert!(too_big.to_tensor(DType::U8).is_err());
    let f = Value::F32(arr1(&[1.0f32, 0.1, -3.5]).into_dyn());
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let back = Value::from_tensor(&f.to_tensor(dt).unwrap()).unwrap();
        let (a, b) = (back.as_f32().unwrap(), f.as_f32().unwrap());
        let tol = if dt == DType::BF16 { 1e-2 } else { 1e-3 };
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol), "{dt}");
    }
    let b = Value::Bool(arr1(&[true, false]).into_dyn());
    assert_eq!(
        Value::from_tensor(&b.to_natural_tensor().unwrap()).unwrap(),
        b
    );
    assert!(f.to_tensor(DType::I32).is_err());
    assert!(b.to_tensor(DType::F32).is_err());
}

/// x → Cast(to, attrs) for each (to, attrs); the outputs in order.
fn casts(x: Value, dtype: DType, to: &[(DType, Vec<(&str, AttrValue)>)]) -> Vec<Value> {
    let mut g = Graph::default();
    g.add(input("x", dtype, &[x.len() as i64])).unwrap();
    for (i, (d, attrs)) in to.iter().enumerate() {
        let mut n = Node::new(format!("c{i}"), "Cast")
            .with_inputs([r("x")])
            .with_attr("to", AttrValue::Type(*d));
        for (k, v) in attrs {
            n = n.with_attr(k, v.clone());
        }
        g.add(n).unwrap();
        g.outputs.push(r(&format!("c{i}")));
    }
    g.inputs = vec!["x".into()];
    let w = MemoryWeights::default();
    Interpreter::new(&g, &w).run(&[("x".into(), x)]).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_f32().unwrap().iter().copied().collect()
}

#[test]
fn casts_to_narrow_floats_follow_the_onnx_tables() {
    let inf = f32::INFINITY;
    let x = f32s(&[5], &[0.3, 1000.0, -inf, 3.0, 2.9]);
    let sat = |b| vec![("saturate", AttrValue::Bool(b))];
    let mode = |m: &str| vec![("round_mode", AttrValue::Str(m.into()))];
    let out = casts(
        x,
        DType::F32,
        &[
            (DType::F8E4M3FN, sat(true)),
            (DType::F8E4M3FN, sat(false)),
            (DType::F8E5M2, sat(false)),
            (DType::F8E8M0, mode("down")),
            (DType::F8E8M0, mode("up")),
            (DType::F8E8M0, mode("nearest")),
        ],
    );
    // E4M3FN: 0.3 = 9.6 steps of 2^-5 → 10 steps = 0.3125; largest finite 448.
    let f = floats(&out[0]);
    assert_eq!(&f[..4], &[0.3125, 448.0, -448.0, 3.0]);
    let f = floats(&out[1]);
    assert_eq!(f[0], 0.3125);
    assert!(f[1].is_nan() && f[2].is_nan());
    // E5M2 (2 mantissa bits, largest finite 57344): 0.3 → 0.3125 (1.25 · 2^-2), 1000 → 1024
    // (7.8 steps of 2^7 → 8); infinities stay infinite.
    assert_eq!(&floats(&out[2])[..3], &[0.3125, 1024.0, -inf]);
    // E8M0: powers of two; 3 lies between 2 and 4 (a tie: nearest goes up), 2.9 nearer 2.
    assert_eq!(&floats(&out[3])[3..], &[2.0, 2.0]);
    assert_eq!(&floats(&out[4])[3..], &[4.0, 4.0]);
    assert_eq!(&floats(&out[5])[3..], &[4.0, 2.0]);
}

#[test]
fn casts_to_sub_byte_integers() {
    let x = f32s(&[6], &[-9.5, -8.7, 7.9, 8.0, f32::NAN, 3.7]);
    let out = casts(x, DType::F32, &[(DType::I4, vec![]), (DType::U2, vec![])]);
    // Truncated toward zero; out of range (and NaN) gives 0.
    assert_eq!(
        out[0].as_i64().unwrap().as_slice().unwrap(),
        &[0, -8, 7, 0, 0, 3]
    );
    assert_eq!(
        out[1].as_i64().unwrap().as_slice().unwrap(),
        &[0, 0, 0, 0, 0, 3]
    );
    // Integers wrap: 9 = 0b1001 → −7 as int4; 200 = 0b1100_1000 → 8 → −8.
    let x = Value::I64(ArrayD::from_shape_vec(IxDyn(&[3]), vec![9, 200, -1]).unwrap());
    let out = casts(x, DType::I64, &[(DType::I4, vec![]), (DType::U4, vec![])]);
    assert_eq!(out[0].as_i64().unwrap().as_slice().unwrap(), &[-7, -8, -1]);
    assert_eq!(out[1].as_i64().unwrap().as_slice().unwrap(), &[9, 8, 15]);
}

#[test]
fn narrow_values_convert_to_tensors_and_back() {
    // E5M2 1.0 = 0 01111 00; −0 keeps its sign bit.
    let t = f32s(&[2], &[1.0, -0.0]).to_tensor(DType::F8E5M2).unwrap();
    assert_eq!(&t.data[..], &[0x3c, 0x80]);
    let i4 = Value::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![-8, 7]).unwrap());
    let t = i4.to_tensor(DType::I4).unwrap();
    assert_eq!(&t.data[..], &[0xf8, 0x07]);
    assert_eq!(Value::from_tensor(&t).unwrap(), i4);
    let big = Value::I64(ArrayD::from_shape_vec(IxDyn(&[1]), vec![8]).unwrap());
    assert!(big.to_tensor(DType::I4).is_err());
}
