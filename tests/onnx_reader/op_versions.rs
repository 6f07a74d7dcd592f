//! Op versions: ops whose meaning depends on their opset or attributes, each read into the
//! computation ONNX defines for it.
use crate::common::{
    arange, attr_f, attr_i, attr_ints, attr_of, attr_s, err, f32_raw, i64_typed, load_model, model,
    node, ops, run, value_info, D,
};
use mmdnn::frontends::Loaded;
use mmdnn::interp::Value;
use mmdnn::ir::AttrValue;
use mmdnn::proto::onnx::{tensor_proto, NodeProto, TensorProto, ValueInfoProto};
use ndarray::{ArrayD, IxDyn};

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
