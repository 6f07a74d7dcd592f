//! Constant folding of shape computations, unknown dims and constant operands.
use crate::common::{
    arange, attr_i, attr_ints, attr_of, err, f32_raw, i64_typed, load, load_model, model, node,
    ops, run, save, value_info, D,
};
use mmdnn::interp::Value;
use mmdnn::ir::types::shape_string;
use mmdnn::ir::{dim, AttrValue};
use mmdnn::proto::onnx::{ModelProto, ValueInfoProto};
use ndarray::{ArrayD, IxDyn};

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
fn symbolic_reshape_targets_copy_keep_or_infer_and_wrong_ones_are_refused() {
    // [N, -1] with N the input's own dim 0: a copy.
    let x = || value_info("x", &[D::S("N"), D::S("C"), D::N(4)]);
    let l = load_model(&shape_chain(&[0], x(), 13)).unwrap();
    assert_eq!(
        attr_of(&l, "Reshape", "shape"),
        AttrValue::Ints(vec![0, -1])
    );
    assert_eq!(run(&l, arange(&[5, 3, 4]))[0].shape(), [5, 12]);
    // [C, N, -1]: the symbols kept, the -1 inferred as 4 = N*C*4 / (C*N).
    let m = shape_chain(&[1, 0], x(), 13);
    let l = load_model(&m).unwrap();
    let AttrValue::Ints(t) = attr_of(&l, "Reshape", "shape") else {
        panic!("not a list");
    };
    assert_eq!(
        t.iter().map(|&d| dim::text_or_int(d)).collect::<Vec<_>>(),
        ["C", "N", "-1"]
    );
    let y = l.graph.node("y").unwrap();
    assert_eq!(shape_string(&y.outputs[0].shape), "[C, N, 4]");
    assert_eq!(run(&l, arange(&[5, 3, 4]))[0].shape(), [3, 5, 4]);
    // The same with C pinned (batch excluded): [3, N, 4].
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "m.onnx", &m);
    let l = load(&path, vec![vec![3, 4]]).unwrap();
    assert_eq!(run(&l, arange(&[2, 3, 4]))[0].shape(), [3, 2, 4]);
    // [C, N] without -1 has a quarter of the elements of [N, C, 4]: refused, not inferred.
    let mut m = shape_chain(&[1, 0], x(), 13);
    let g = m.graph.as_mut().unwrap();
    g.node
        .iter_mut()
        .find(|n| n.op_type == "Concat")
        .unwrap()
        .input
        .pop();
    let e = err(load_model(&m));
    assert!(e.contains("cannot reshape [N, C, 4] into [C, N]"), "{e}");
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

/// A constant far larger than its inputs (a 4 GB ConstantOfShape from a shape) is refused
/// instead of being materialised while converting; a large weight transposed for a Gemm (the
/// same size as its input, 82 MB) is still folded.
#[test]
fn folding_materialises_no_value_far_larger_than_its_inputs() {
    let nodes = vec![
        node("ConstantOfShape", &["big_shape"], &["big"], vec![]),
        node("Add", &["x", "big"], &["y"], vec![]),
    ];
    let inits = vec![i64_typed("big_shape", &[2], &[1 << 20, 1 << 10])];
    let m = model(13, nodes, inits, value_info("x", &[D::N(1)]));
    let e = err(load_model(&m));
    assert!(
        e.contains("shape [1048576, 1024]") && e.contains("64 MB"),
        "{e}"
    );

    let (k, n) = (4096usize, 5000usize);
    let w: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32).collect();
    let nodes = vec![
        node(
            "Transpose",
            &["w"],
            &["wt"],
            vec![attr_ints("perm", &[1, 0])],
        ),
        node("Gemm", &["x", "wt"], &["y"], vec![]),
    ];
    let inits = vec![f32_raw("w", &[n as i64, k as i64], &w)];
    let l = load_model(&model(
        13,
        nodes,
        inits,
        value_info("x", &[D::N(1), D::N(k as i64)]),
    ))
    .unwrap();
    assert!(!ops(&l).iter().any(|o| o == "Transpose"), "{:?}", ops(&l));
}

/// A Range of 10^12 values (8 TB), and one whose limit minus start overflows an i64, are
/// refused by the fold cap instead of allocated (an abort before) or wrapped.
#[test]
fn huge_ranges_are_refused_not_allocated() {
    for (start, limit) in [(0, 1_000_000_000_000i64), (i64::MIN, i64::MAX)] {
        let nodes = vec![
            node("Range", &["start", "limit", "delta"], &["r"], vec![]),
            node("Add", &["x", "r"], &["y"], vec![]),
        ];
        let inits = vec![
            i64_typed("start", &[], &[start]),
            i64_typed("limit", &[], &[limit]),
            i64_typed("delta", &[], &[1]),
        ];
        let m = model(13, nodes, inits, value_info("x", &[D::N(1)]));
        let e = err(load_model(&m));
        assert!(e.contains("Range of") && e.contains("64 MB"), "{e}");
    }
}

/// The 2,147,483,647-dim class of bug: `Shape → Slice(end = INT64_MAX or INT32_MAX) → Concat →
/// Reshape` over a symbolic batch (what converters write for "the rest of the shape") once
/// folded the slice's end into a dim. The target must be the symbolic shape itself, and the
/// model must run at any batch.
#[test]
fn slices_to_the_end_of_a_symbolic_shape_fold_to_its_dims() {
    for end in [i64::MAX, i32::MAX as i64] {
        let nodes = vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Slice", &["s", "zero", "one"], &["head"], vec![]),
            node("Slice", &["s", "one", "end"], &["tail"], vec![]),
            node(
                "Concat",
                &["head", "tail"],
                &["target"],
                vec![attr_i("axis", 0)],
            ),
            node("Reshape", &["x", "target"], &["y"], vec![]),
        ];
        let inits = vec![
            i64_typed("zero", &[1], &[0]),
            i64_typed("one", &[1], &[1]),
            i64_typed("end", &[1], &[end]),
        ];
        let x = value_info("x", &[D::S("batch"), D::N(6), D::N(16)]);
        let l = load_model(&model(13, nodes, inits, x)).unwrap();
        let AttrValue::Ints(t) = attr_of(&l, "Reshape", "shape") else {
            panic!("not a list");
        };
        assert!(
            !t.contains(&(i32::MAX as i64)) && !t.contains(&i64::MAX),
            "{t:?}"
        );
        assert_eq!(
            t,
            [0, 6, 16],
            "end {end}: the batch is a copy of the input's"
        );
        let y = l.graph.node("y").unwrap();
        assert_eq!(shape_string(&y.outputs[0].shape), "[batch, 6, 16]");
        for n in [1, 5] {
            assert_eq!(run(&l, arange(&[n, 6, 16]))[0].shape(), [n, 6, 16]);
        }
    }
}
