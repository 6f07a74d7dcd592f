//! Refusals: unsupported ops, attributes and opsets, and shapes the reader cannot know.
use crate::common::{attr_i, attr_ints, err, load_model, model, node, ops, run, value_info, D};
use mmdnn::interp::Value;
use mmdnn::proto::onnx::{tensor_proto, type_proto, OperatorSetIdProto, ValueInfoProto};

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

#[test]
fn zeros_like_an_input_of_symbolic_shape_is_made_at_run_time() {
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
    // Nothing the size of the input is made at conversion time: the value is broadcast.
    let l = load_model(&m).unwrap();
    assert!(ops(&l).contains(&"Expand".to_string()), "{:?}", ops(&l));
    for n in [1, 2] {
        let x = crate::common::arange(&[n, 3, 224, 224]);
        let y = run(&l, x.clone());
        assert_eq!(y[0], x);
    }
}

/// An initializer of dims [2^32, 2^32] (and [2^40, 2^40]) with no data: its element count
/// wrapped to 0 and matched the empty data. Now its size is refused, naming the tensor.
#[test]
fn initializers_larger_than_memory_are_refused() {
    for d in [1i64 << 32, 1 << 40] {
        let w = crate::common::f32_raw("w", &[d, d], &[]);
        let m = model(
            13,
            vec![node("Add", &["x", "w"], &["y"], vec![])],
            vec![w],
            value_info("x", &[D::N(1)]),
        );
        let e = err(load_model(&m));
        assert!(e.contains("more bytes than memory can address"), "{e}");
        assert!(e.contains("'w'"), "{e}");
    }
}

/// Two nodes writing one value: one of them used to be dropped silently. Every clash is listed,
/// with both writers.
#[test]
fn a_graph_not_in_single_assignment_form_is_refused() {
    let mut relu = node("Relu", &["x"], &["y"], vec![]);
    relu.name = "relu".into();
    let mut sigmoid = node("Sigmoid", &["x"], &["y"], vec![]);
    sigmoid.name = "sigmoid".into();
    let mut shadow = node("Neg", &["x"], &["x"], vec![]);
    shadow.name = "shadow".into();
    let m = model(
        13,
        vec![relu, sigmoid, shadow],
        vec![],
        value_info("x", &[D::N(2)]),
    );
    let e = err(load_model(&m));
    assert!(e.contains("not in single-assignment form"), "{e}");
    assert!(
        e.contains("value 'y' is written by node 'relu' (Relu) and by node 'sigmoid' (Sigmoid)"),
        "{e}"
    );
    assert!(
        e.contains("value 'x' is written by a graph input and by node 'shadow' (Neg)"),
        "{e}"
    );
}

/// Constant Gather indices outside the gathered axis (data of known size) are refused when the
/// model is read; before, they failed only when the model ran.
#[test]
fn constant_gather_indices_out_of_range_are_refused() {
    let indices = |v: Vec<i64>| mmdnn::proto::onnx::TensorProto {
        name: "idx".into(),
        data_type: tensor_proto::DataType::Int64 as i32,
        dims: vec![v.len() as i64],
        int64_data: v,
        ..Default::default()
    };
    for (bad, shown) in [
        (vec![0, 3], "hold 3, outside [-3, 3)"),
        (vec![-4], "hold -4"),
    ] {
        let m = model(
            13,
            vec![node(
                "Gather",
                &["x", "idx"],
                &["y"],
                vec![attr_i("axis", 1)],
            )],
            vec![indices(bad)],
            value_info("x", &[D::S("N"), D::N(3)]),
        );
        let e = err(load_model(&m));
        assert!(e.contains("indices out of range"), "{e}");
        assert!(e.contains("(Gather): constant indices 'idx'"), "{e}");
        assert!(e.contains(shown), "{e}");
    }
    let ok = model(
        13,
        vec![node(
            "Gather",
            &["x", "idx"],
            &["y"],
            vec![attr_i("axis", 1)],
        )],
        vec![indices(vec![0, 2, -3])],
        value_info("x", &[D::S("N"), D::N(3)]),
    );
    load_model(&ok).unwrap();
}

/// GroupNormalization with num_groups 0 is refused by name, not divided by (found by the onnx
/// fuzz target).
#[test]
fn group_norm_with_zero_groups_is_refused() {
    use crate::common::f32_raw;
    let gn = node(
        "GroupNormalization",
        &["x", "s", "b"],
        &["y"],
        vec![attr_i("num_groups", 0)],
    );
    let m = model(
        18,
        vec![gn],
        vec![f32_raw("s", &[0], &[]), f32_raw("b", &[0], &[])],
        value_info("x", &[D::N(1), D::N(4), D::N(2)]),
    );
    let e = err(load_model(&m));
    assert!(e.contains("GroupNormalization"), "{e}");
    assert!(e.contains("num_groups 0 is not positive"), "{e}");
}

#[test]
fn recurrent_initial_states_of_the_wrong_shape_and_partial_sequences_are_refused() {
    // x [T=2, N=1, F=3], H = 3, forward: initial_h must be [1, 1, 3]; Relu(x) is [2, 1, 3].
    let w = crate::common::f32_raw("W", &[1, 12, 3], &[0.1; 36]);
    let r = crate::common::f32_raw("R", &[1, 12, 3], &[0.1; 36]);
    let lens = mmdnn::proto::onnx::TensorProto {
        name: "lens".into(),
        dims: vec![1],
        data_type: tensor_proto::DataType::Int32 as i32,
        int32_data: vec![1],
        ..Default::default()
    };
    let m = model(
        14,
        vec![
            node("Relu", &["x"], &["h_wrong"], vec![]),
            node(
                "LSTM",
                &["x", "W", "R", "", "", "h_wrong"],
                &["y1"],
                vec![attr_i("hidden_size", 3)],
            ),
            node(
                "LSTM",
                &["x", "W", "R", "", "lens"],
                &["y2"],
                vec![attr_i("hidden_size", 3)],
            ),
            node("Add", &["y1", "y2"], &["y"], vec![]),
        ],
        vec![w, r, lens],
        value_info("x", &[D::N(2), D::N(1), D::N(3)]),
    );
    let e = err(load_model(&m));
    assert!(
        e.contains("initial_h is float32[2, 1, 3]; expected [D, N, H] with D = 1, H = 3"),
        "{e}"
    );
    assert!(
        e.contains("sequence_lens other than the default has no IR equivalent"),
        "{e}"
    );
}
