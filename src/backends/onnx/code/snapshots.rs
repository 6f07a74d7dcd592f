//! Snapshot tests of the script `tocode -f onnx` writes, per op family: each builds a one-op
//! graph ([`OneOp`]) and pins the script's `initializers` and `nodes` lists, what rebuilds the
//! node. A snapshot is a reviewed expected output: when the lowering changes on purpose, rewrite
//! them with `UPDATE_EXPECT=1 cargo test --lib backends::onnx::code` and check each changed one
//! is correct ONNX for its graph before committing it.
use super::render;
use crate::backends::onnx::{build, Options};
use crate::backends::pytorch::test_graph::{channels_first, OneOp};
use crate::ir::{AttrValue, DType};
use expect_test::{expect, Expect};
use std::path::Path;

/// The script's `initializers = [...]` and `nodes = [...]` lists, dedented.
fn script_lists(op: OneOp, opset: Option<i64>) -> String {
    let (graph, weights) = op.build();
    let opts = Options {
        opset,
        ..Options::default()
    };
    let prepared = channels_first(&graph, &weights).expect("converts the layout");
    let model =
        build(prepared, opts).unwrap_or_else(|e| panic!("no ONNX model for the graph: {e:#}"));
    let script = render(&model, Path::new("/ir.npz"), Path::new("/model.py"))
        .unwrap_or_else(|e| panic!("no ONNX script: {e:#}"));
    let mut text = String::new();
    for list in ["    initializers = [", "    nodes = ["] {
        let start = script.find(list).expect("the script builds the list");
        let end = start + script[start..].find("\n    ]").expect("the list ends") + 6;
        for line in script[start..end].lines() {
            text.push_str(line.strip_prefix("    ").unwrap_or(line));
            text.push('\n');
        }
    }
    text
}

/// Pins the script's lists for `op`'s graph at the default opset.
fn check(op: OneOp, expect: Expect) {
    expect.assert_eq(&script_lists(op, None));
}

/// Pins the script's lists for `op`'s graph at `opset`.
fn check_at(opset: i64, op: OneOp, expect: Expect) {
    expect.assert_eq(&script_lists(op, Some(opset)));
}

#[test]
fn constant_is_an_initializer_through_identity() {
    check(
        OneOp::new("Constant")
            .attr("dtype", AttrValue::Type(DType::F32))
            .attr("shape", AttrValue::Shape(vec![2, 3]))
            .weight("value", &[2, 3]),
        expect![[r#"
            initializers = [
                tensor("constant/value", 1, [2, 3], weight(store, "constant/value")),
            ]
            nodes = [
                node("Identity", ["constant/value"], ["constant"], "constant", {}),
            ]
        "#]],
    );
}

#[test]
fn conv_with_groups_and_asymmetric_pads() {
    check(
        OneOp::new("Conv")
            .input("x", &[1, 4, 8, 8])
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[0, 0, 1, 1])
            .int("group", 2)
            .int("out_channels", 6)
            .bool("use_bias", true)
            .weight("weights", &[6, 2, 3, 3])
            .weight("bias", &[6]),
        expect![[r#"
            initializers = [
                tensor("conv/weights", 1, [6, 2, 3, 3], weight(store, "conv/weights")),
                tensor("conv/bias", 1, [6], weight(store, "conv/bias")),
            ]
            nodes = [
                node("Conv", ["x", "conv/weights", "conv/bias"], ["conv"], "conv", {"kernel_shape": [3, 3], "group": 2, "strides": [2, 2], "pads": [0, 0, 1, 1]}),
            ]
        "#]],
    );
}

#[test]
fn runtime_conv_is_conv_on_its_inputs() {
    check(
        OneOp::new("RuntimeConv")
            .input("x", &[1, 4, 8, 8])
            .input("w", &[6, 2, 3, 3])
            .input("b", &[6])
            .ints("kernel_shape", &[3, 3])
            .ints("pads", &[0, 0, 1, 1])
            .int("group", 2)
            .int("out_channels", 6),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("Conv", ["x", "w", "b"], ["runtimeconv"], "runtimeconv", {"kernel_shape": [3, 3], "group": 2, "pads": [0, 0, 1, 1]}),
            ]
        "#]],
    );
}

#[test]
fn conv_transpose_with_output_padding() {
    check(
        OneOp::new("ConvTranspose")
            .input("x", &[1, 4, 5, 5])
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[1, 1, 0, 0])
            .ints("output_padding", &[1, 1])
            .int("out_channels", 2)
            .weight("weights", &[4, 2, 3, 3]),
        expect![[r#"
            initializers = [
                tensor("convtranspose/weights", 1, [4, 2, 3, 3], weight(store, "convtranspose/weights")),
            ]
            nodes = [
                node("ConvTranspose", ["x", "convtranspose/weights"], ["convtranspose"], "convtranspose", {"kernel_shape": [3, 3], "group": 1, "strides": [2, 2], "pads": [1, 1, 0, 0], "output_padding": [1, 1]}),
            ]
        "#]],
    );
}

#[test]
fn max_pool_with_ceil_mode() {
    check(
        OneOp::new("Pool")
            .input("x", &[1, 3, 8, 8])
            .str("pooling_type", "MAX")
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[1, 1, 1, 1])
            .bool("ceil_mode", true),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("MaxPool", ["x"], ["pool"], "pool", {"kernel_shape": [3, 3], "ceil_mode": 1, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
            ]
        "#]],
    );
}

#[test]
fn avg_pool_counting_the_padding() {
    check(
        OneOp::new("Pool")
            .input("x", &[1, 2, 5, 5])
            .str("pooling_type", "AVG")
            .ints("kernel_shape", &[2, 2])
            .ints("pads", &[0, 0, 1, 1])
            .bool("count_include_pad", true),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("AveragePool", ["x"], ["pool"], "pool", {"kernel_shape": [2, 2], "ceil_mode": 0, "strides": [1, 1], "pads": [0, 0, 1, 1], "count_include_pad": 1}),
            ]
        "#]],
    );
}

/// SAME padding over spatial dims not known here is ONNX's auto_pad (onnxruntime computes it).
#[test]
fn conv_and_avg_pool_with_same_padding_at_run_time() {
    let (h, w) = (crate::ir::dim::symbol("H"), crate::ir::dim::symbol("W"));
    let conv = OneOp::new("Conv")
        .input("x", &[1, 2, h, w])
        .ints("kernel_shape", &[3, 3])
        .ints("strides", &[2, 2])
        .str("auto_pad", "same_upper")
        .int("out_channels", 2)
        .weight("weights", &[2, 2, 3, 3]);
    let pool = OneOp::new("Pool")
        .input("x", &[1, 2, h, 5])
        .str("pooling_type", "AVG")
        .ints("kernel_shape", &[2, 2])
        .ints("strides", &[2, 2])
        .str("auto_pad", "same_lower");
    let text = script_lists(conv, None) + &script_lists(pool, None);
    expect![[r#"
        initializers = [
            tensor("conv/weights", 1, [2, 2, 3, 3], weight(store, "conv/weights")),
        ]
        nodes = [
            node("Conv", ["x", "conv/weights"], ["conv"], "conv", {"kernel_shape": [3, 3], "group": 1, "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        ]
        initializers = [
        ]
        nodes = [
            node("AveragePool", ["x"], ["pool"], "pool", {"kernel_shape": [2, 2], "ceil_mode": 0, "strides": [2, 2], "auto_pad": "SAME_LOWER", "count_include_pad": 0}),
        ]
    "#]]
    .assert_eq(&text);
}

#[test]
fn global_avg_pool_without_keepdims() {
    check(
        OneOp::new("GlobalPool")
            .input("x", &[2, 3, 4, 4])
            .bool("keepdims", false),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("GlobalAveragePool", ["x"], ["globalpool/globalaveragepool"], "globalpool", {}),
                node("Flatten", ["globalpool/globalaveragepool"], ["globalpool"], "globalpool/Flatten", {"axis": 1}),
            ]
        "#]],
    );
}

#[test]
fn resize_nearest_by_scales() {
    check(
        OneOp::new("Resize")
            .input("x", &[1, 3, 4, 5])
            .floats("scales", &[2.0, 3.0])
            .str("coordinate_transformation_mode", "asymmetric")
            .str("nearest_mode", "floor"),
        expect![[r#"
            initializers = [
                tensor("resize/scales", 1, [4], bytes.fromhex("0000803f0000803f0000004000004040")),
            ]
            nodes = [
                node("Resize", ["x", "", "resize/scales"], ["resize"], "resize", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor", "cubic_coeff_a": -0.75}),
            ]
        "#]],
    );
}

#[test]
fn resize_linear_to_sizes_before_and_from_opset_18() {
    let resize = || {
        OneOp::new("Resize")
            .input("x", &[1, 3, 4, 4])
            .str("mode", "linear")
            .ints("sizes", &[7, 9])
    };
    check(
        resize(),
        expect![[r#"
            initializers = [
                tensor("resize/nc_start", 7, [1], bytes.fromhex("0000000000000000")),
                tensor("resize/nc_end", 7, [1], bytes.fromhex("0200000000000000")),
                tensor("resize/sizes", 7, [2], bytes.fromhex("07000000000000000900000000000000")),
            ]
            nodes = [
                node("Shape", ["x"], ["resize/shape"], "resize", {}),
                node("Slice", ["resize/shape", "resize/nc_start", "resize/nc_end"], ["resize/slice"], "resize/Slice", {}),
                node("Concat", ["resize/slice", "resize/sizes"], ["resize/concat"], "resize/Concat", {"axis": 0}),
                node("Resize", ["x", "", "", "resize/concat"], ["resize"], "resize/Resize", {"mode": "linear", "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_floor", "cubic_coeff_a": -0.75}),
            ]
        "#]],
    );
    check_at(
        18,
        resize(),
        expect![[r#"
            initializers = [
                tensor("resize/sizes", 7, [2], bytes.fromhex("07000000000000000900000000000000")),
            ]
            nodes = [
                node("Resize", ["x", "", "", "resize/sizes"], ["resize"], "resize", {"mode": "linear", "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_floor", "cubic_coeff_a": -0.75, "axes": [2, 3]}),
            ]
        "#]],
    );
}

#[test]
fn fully_connected_is_gemm_on_2d_and_matmul_add_otherwise() {
    let fc = |shape: &[i64]| {
        OneOp::new("FullyConnected")
            .input("x", shape)
            .int("units", 3)
            .bool("use_bias", true)
            .weight("weights", &[4, 3])
            .weight("bias", &[3])
    };
    check(
        fc(&[2, 4]),
        expect![[r#"
            initializers = [
                tensor("fullyconnected/weights", 1, [4, 3], weight(store, "fullyconnected/weights")),
                tensor("fullyconnected/bias", 1, [3], weight(store, "fullyconnected/bias")),
            ]
            nodes = [
                node("Gemm", ["x", "fullyconnected/weights", "fullyconnected/bias"], ["fullyconnected"], "fullyconnected", {}),
            ]
        "#]],
    );
    check(
        fc(&[2, 5, 4]),
        expect![[r#"
            initializers = [
                tensor("fullyconnected/weights", 1, [4, 3], weight(store, "fullyconnected/weights")),
                tensor("fullyconnected/bias", 1, [3], weight(store, "fullyconnected/bias")),
            ]
            nodes = [
                node("MatMul", ["x", "fullyconnected/weights"], ["fullyconnected/matmul"], "fullyconnected", {}),
                node("Add", ["fullyconnected/matmul", "fullyconnected/bias"], ["fullyconnected"], "fullyconnected/Add", {}),
            ]
        "#]],
    );
}

#[test]
fn embedding_is_gather_on_the_table() {
    check(
        OneOp::new("Embedding")
            .typed_input("ids", DType::U8, &[2, 7])
            .int("input_dim", 10)
            .int("output_dim", 4)
            .weight("weights", &[10, 4]),
        expect![[r#"
            initializers = [
                tensor("embedding/weights", 1, [10, 4], weight(store, "embedding/weights")),
            ]
            nodes = [
                node("Cast", ["ids"], ["embedding/cast"], "embedding", {"to": 7}),
                node("Gather", ["embedding/weights", "embedding/cast"], ["embedding"], "embedding/Gather", {"axis": 0}),
            ]
        "#]],
    );
}

#[test]
fn batch_norm_without_scale_gets_ones() {
    check(
        OneOp::new("BatchNorm")
            .input("x", &[1, 4, 5, 5])
            .bool("use_scale", false)
            .weight("mean", &[4])
            .weight("var", &[4])
            .weight("bias", &[4]),
        expect![[r#"
            initializers = [
                tensor("batchnorm/scale", 1, [4], bytes.fromhex("0000803f0000803f0000803f0000803f")),
                tensor("batchnorm/bias", 1, [4], weight(store, "batchnorm/bias")),
                tensor("batchnorm/mean", 1, [4], weight(store, "batchnorm/mean")),
                tensor("batchnorm/var", 1, [4], weight(store, "batchnorm/var")),
            ]
            nodes = [
                node("BatchNormalization", ["x", "batchnorm/scale", "batchnorm/bias", "batchnorm/mean", "batchnorm/var"], ["batchnorm"], "batchnorm", {"epsilon": 1e-5}),
            ]
        "#]],
    );
}

#[test]
fn layer_norm_over_the_last_axis() {
    check(
        OneOp::new("LayerNorm")
            .input("x", &[2, 5, 8])
            .weight("scale", &[8])
            .weight("bias", &[8]),
        expect![[r#"
            initializers = [
                tensor("layernorm/scale", 1, [8], weight(store, "layernorm/scale")),
                tensor("layernorm/bias", 1, [8], weight(store, "layernorm/bias")),
            ]
            nodes = [
                node("LayerNormalization", ["x", "layernorm/scale", "layernorm/bias"], ["layernorm"], "layernorm", {"axis": 2, "epsilon": 1e-5}),
            ]
        "#]],
    );
}

#[test]
fn leaky_relu_and_silu() {
    check(
        OneOp::new("LeakyRelu")
            .input("x", &[2, 3])
            .float("alpha", 0.2),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("LeakyRelu", ["x"], ["leakyrelu"], "leakyrelu", {"alpha": 0.2}),
            ]
        "#]],
    );
    check(
        OneOp::new("SiLU").input("x", &[2, 3]),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("Sigmoid", ["x"], ["silu/sigmoid"], "silu", {}),
                node("Mul", ["x", "silu/sigmoid"], ["silu"], "silu/Mul", {}),
            ]
        "#]],
    );
}

#[test]
fn clip_bounds_are_inputs() {
    check(
        OneOp::new("Clip")
            .input("x", &[2, 3])
            .float("min", 0.0)
            .float("max", 6.0),
        expect![[r#"
            initializers = [
                tensor("clip/min", 1, [], bytes.fromhex("00000000")),
                tensor("clip/max", 1, [], bytes.fromhex("0000c040")),
            ]
            nodes = [
                node("Clip", ["x", "clip/min", "clip/max"], ["clip"], "clip", {}),
            ]
        "#]],
    );
}

#[test]
fn add_and_float_mod() {
    check(
        OneOp::new("Add").input("a", &[2, 3]).input("b", &[3]),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("Add", ["a", "b"], ["add"], "add", {}),
            ]
        "#]],
    );
    check(
        OneOp::new("Mod").input("a", &[4]).input("b", &[4]),
        expect![[r#"
            initializers = [
                tensor("mod/zero", 1, [], bytes.fromhex("00000000")),
            ]
            nodes = [
                node("Mod", ["a", "b"], ["mod/mod"], "mod", {"fmod": 1}),
                node("Equal", ["mod/mod", "mod/zero"], ["mod/equal"], "mod/Equal", {}),
                node("Not", ["mod/equal"], ["mod/not"], "mod/Not", {}),
                node("Less", ["mod/mod", "mod/zero"], ["mod/less"], "mod/Less", {}),
                node("Less", ["b", "mod/zero"], ["mod/less_1"], "mod/Less_2", {}),
                node("Xor", ["mod/less", "mod/less_1"], ["mod/xor"], "mod/Xor", {}),
                node("And", ["mod/not", "mod/xor"], ["mod/and"], "mod/And", {}),
                node("Add", ["mod/mod", "b"], ["mod/add"], "mod/Add", {}),
                node("Where", ["mod/and", "mod/add", "mod/mod"], ["mod"], "mod/Where", {}),
            ]
        "#]],
    );
}

#[test]
fn reduce_mean_axes_attribute_until_opset_18() {
    let mean = || {
        OneOp::new("ReduceMean")
            .input("x", &[1, 3, 4, 4])
            .ints("axes", &[2, 3])
            .bool("keepdims", false)
    };
    check(
        mean(),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("ReduceMean", ["x"], ["reducemean"], "reducemean", {"keepdims": 0, "axes": [2, 3]}),
            ]
        "#]],
    );
    check_at(
        18,
        mean(),
        expect![[r#"
            initializers = [
                tensor("reducemean/axes", 7, [2], bytes.fromhex("02000000000000000300000000000000")),
            ]
            nodes = [
                node("ReduceMean", ["x", "reducemean/axes"], ["reducemean"], "reducemean", {"keepdims": 0}),
            ]
        "#]],
    );
}

#[test]
fn argmax_of_the_last_best_index() {
    check(
        OneOp::new("ArgMax")
            .input("x", &[2, 5])
            .int("axis", 1)
            .bool("select_last_index", true),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("ArgMax", ["x"], ["argmax"], "argmax", {"axis": 1, "keepdims": 1, "select_last_index": 1}),
            ]
        "#]],
    );
}

#[test]
fn reshape_transpose_and_slice() {
    check(
        OneOp::new("Reshape")
            .input("x", &[-1, 3, 4])
            .ints("shape", &[0, -1]),
        expect![[r#"
            initializers = [
                tensor("reshape/shape", 7, [2], bytes.fromhex("0000000000000000ffffffffffffffff")),
            ]
            nodes = [
                node("Reshape", ["x", "reshape/shape"], ["reshape"], "reshape", {}),
            ]
        "#]],
    );
    check(
        OneOp::new("Transpose")
            .input("x", &[2, 3, 4])
            .ints("perm", &[0, 2, 1]),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("Transpose", ["x"], ["transpose"], "transpose", {"perm": [0, 2, 1]}),
            ]
        "#]],
    );
    check(
        OneOp::new("Slice")
            .input("x", &[4, 10])
            .ints("starts", &[1, -2])
            .ints("ends", &[3, 0])
            .ints("axes", &[0, 1])
            .ints("steps", &[1, -3]),
        expect![[r#"
            initializers = [
                tensor("slice/starts", 7, [2], bytes.fromhex("0100000000000000feffffffffffffff")),
                tensor("slice/ends", 7, [2], bytes.fromhex("03000000000000000000000000000000")),
                tensor("slice/axes", 7, [2], bytes.fromhex("00000000000000000100000000000000")),
                tensor("slice/steps", 7, [2], bytes.fromhex("0100000000000000fdffffffffffffff")),
            ]
            nodes = [
                node("Slice", ["x", "slice/starts", "slice/ends", "slice/axes", "slice/steps"], ["slice"], "slice", {}),
            ]
        "#]],
    );
}

#[test]
fn split_pad_and_cast() {
    check(
        OneOp::new("Split")
            .input("x", &[2, 10])
            .int("axis", 1)
            .ints("split", &[3, 7])
            .outputs(2),
        expect![[r#"
            initializers = [
                tensor("split/split", 7, [2], bytes.fromhex("03000000000000000700000000000000")),
            ]
            nodes = [
                node("Split", ["x", "split/split"], ["split", "split:1"], "split", {"axis": 1}),
            ]
        "#]],
    );
    check(
        OneOp::new("Pad")
            .input("x", &[1, 2, 5, 5])
            .ints("pads", &[0, 0, 1, 2, 0, 0, 2, 1])
            .str("mode", "reflect"),
        expect![[r#"
            initializers = [
                tensor("pad/pads", 7, [8], bytes.fromhex("00000000000000000000000000000000010000000000000002000000000000000000000000000000000000000000000002000000000000000100000000000000")),
            ]
            nodes = [
                node("Pad", ["x", "pad/pads"], ["pad"], "pad", {"mode": "reflect"}),
            ]
        "#]],
    );
    check(
        OneOp::new("Cast")
            .input("x", &[4])
            .attr("to", AttrValue::Type(DType::I32)),
        expect![[r#"
            initializers = [
            ]
            nodes = [
                node("Cast", ["x"], ["cast"], "cast", {"to": 6}),
            ]
        "#]],
    );
}

#[test]
fn bidirectional_lstm_is_onnx_lstm_between_batch_first_transposes() {
    check(
        OneOp::new("LSTM")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .str("direction", "bidirectional")
            .weight("W", &[2, 16, 3])
            .weight("R", &[2, 16, 4])
            .weight("B", &[2, 32])
            .outputs(3),
        expect![[r#"
            initializers = [
                tensor("lstm/W", 1, [2, 16, 3], weight(store, "lstm/W")),
                tensor("lstm/R", 1, [2, 16, 4], weight(store, "lstm/R")),
                tensor("lstm/B", 1, [2, 32], weight(store, "lstm/B")),
                tensor("lstm/out0_shape", 7, [3], bytes.fromhex("00000000000000000000000000000000ffffffffffffffff")),
                tensor("lstm/out1_shape", 7, [2], bytes.fromhex("0000000000000000ffffffffffffffff")),
                tensor("lstm/out2_shape", 7, [2], bytes.fromhex("0000000000000000ffffffffffffffff")),
            ]
            nodes = [
                node("Transpose", ["x"], ["lstm/transpose"], "lstm", {"perm": [1, 0, 2]}),
                node("LSTM", ["lstm/transpose", "lstm/W", "lstm/R", "lstm/B"], ["lstm/onnx_out0", "lstm/onnx_out1", "lstm/onnx_out2"], "lstm/LSTM", {"hidden_size": 4, "direction": "bidirectional", "activations": ["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Tanh", "Tanh"]}),
                node("Transpose", ["lstm/onnx_out0"], ["lstm/transpose_1"], "lstm/Transpose", {"perm": [2, 0, 1, 3]}),
                node("Reshape", ["lstm/transpose_1", "lstm/out0_shape"], ["lstm"], "lstm/Reshape", {}),
                node("Transpose", ["lstm/onnx_out1"], ["lstm/transpose_2"], "lstm/Transpose_2", {"perm": [1, 0, 2]}),
                node("Reshape", ["lstm/transpose_2", "lstm/out1_shape"], ["lstm:1"], "lstm/Reshape_2", {}),
                node("Transpose", ["lstm/onnx_out2"], ["lstm/transpose_3"], "lstm/Transpose_3", {"perm": [1, 0, 2]}),
                node("Reshape", ["lstm/transpose_3", "lstm/out2_shape"], ["lstm:2"], "lstm/Reshape_3", {}),
            ]
        "#]],
    );
}

#[test]
fn lstm_initial_states_are_reshaped_and_transposed_to_direction_first() {
    check(
        OneOp::new("LSTM")
            .input("x", &[2, 5, 3])
            .input("h0", &[2, 8])
            .input("c0", &[2, 8])
            .int("hidden_size", 4)
            .str("direction", "bidirectional")
            .weight("W", &[2, 16, 3])
            .weight("R", &[2, 16, 4])
            .outputs(3),
        expect![[r#"
            initializers = [
                tensor("lstm/W", 1, [2, 16, 3], weight(store, "lstm/W")),
                tensor("lstm/R", 1, [2, 16, 4], weight(store, "lstm/R")),
                tensor("lstm/state1_shape", 7, [3], bytes.fromhex("000000000000000002000000000000000400000000000000")),
                tensor("lstm/state2_shape", 7, [3], bytes.fromhex("000000000000000002000000000000000400000000000000")),
                tensor("lstm/out0_shape", 7, [3], bytes.fromhex("00000000000000000000000000000000ffffffffffffffff")),
                tensor("lstm/out1_shape", 7, [2], bytes.fromhex("0000000000000000ffffffffffffffff")),
                tensor("lstm/out2_shape", 7, [2], bytes.fromhex("0000000000000000ffffffffffffffff")),
            ]
            nodes = [
                node("Transpose", ["x"], ["lstm/transpose"], "lstm", {"perm": [1, 0, 2]}),
                node("Reshape", ["h0", "lstm/state1_shape"], ["lstm/reshape"], "lstm/Reshape", {}),
                node("Transpose", ["lstm/reshape"], ["lstm/transpose_1"], "lstm/Transpose", {"perm": [1, 0, 2]}),
                node("Reshape", ["c0", "lstm/state2_shape"], ["lstm/reshape_1"], "lstm/Reshape_2", {}),
                node("Transpose", ["lstm/reshape_1"], ["lstm/transpose_2"], "lstm/Transpose_2", {"perm": [1, 0, 2]}),
                node("LSTM", ["lstm/transpose", "lstm/W", "lstm/R", "", "", "lstm/transpose_1", "lstm/transpose_2"], ["lstm/onnx_out0", "lstm/onnx_out1", "lstm/onnx_out2"], "lstm/LSTM", {"hidden_size": 4, "direction": "bidirectional", "activations": ["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Tanh", "Tanh"]}),
                node("Transpose", ["lstm/onnx_out0"], ["lstm/transpose_3"], "lstm/Transpose_3", {"perm": [2, 0, 1, 3]}),
                node("Reshape", ["lstm/transpose_3", "lstm/out0_shape"], ["lstm"], "lstm/Reshape_3", {}),
                node("Transpose", ["lstm/onnx_out1"], ["lstm/transpose_4"], "lstm/Transpose_4", {"perm": [1, 0, 2]}),
                node("Reshape", ["lstm/transpose_4", "lstm/out1_shape"], ["lstm:1"], "lstm/Reshape_4", {}),
                node("Transpose", ["lstm/onnx_out2"], ["lstm/transpose_5"], "lstm/Transpose_5", {"perm": [1, 0, 2]}),
                node("Reshape", ["lstm/transpose_5", "lstm/out2_shape"], ["lstm:2"], "lstm/Reshape_5", {}),
            ]
        "#]],
    );
}

#[test]
fn rnn_with_initial_state_and_no_bias_leaves_b_and_sequence_lens_empty() {
    check(
        OneOp::new("RNN")
            .input("x", &[2, 5, 3])
            .input("h0", &[2, 4])
            .int("hidden_size", 4)
            .weight("W", &[1, 4, 3])
            .weight("R", &[1, 4, 4])
            .outputs(2),
        expect![[r#"
            initializers = [
                tensor("rnn/W", 1, [1, 4, 3], weight(store, "rnn/W")),
                tensor("rnn/R", 1, [1, 4, 4], weight(store, "rnn/R")),
                tensor("rnn/state1_shape", 7, [3], bytes.fromhex("000000000000000001000000000000000400000000000000")),
                tensor("rnn/out0_shape", 7, [3], bytes.fromhex("00000000000000000000000000000000ffffffffffffffff")),
                tensor("rnn/out1_shape", 7, [2], bytes.fromhex("0000000000000000ffffffffffffffff")),
            ]
            nodes = [
                node("Transpose", ["x"], ["rnn/transpose"], "rnn", {"perm": [1, 0, 2]}),
                node("Reshape", ["h0", "rnn/state1_shape"], ["rnn/reshape"], "rnn/Reshape", {}),
                node("Transpose", ["rnn/reshape"], ["rnn/transpose_1"], "rnn/Transpose", {"perm": [1, 0, 2]}),
                node("RNN", ["rnn/transpose", "rnn/W", "rnn/R", "", "", "rnn/transpose_1"], ["rnn/onnx_out0", "rnn/onnx_out1"], "rnn/RNN", {"hidden_size": 4, "direction": "forward", "activations": ["Tanh"]}),
                node("Transpose", ["rnn/onnx_out0"], ["rnn/transpose_2"], "rnn/Transpose_2", {"perm": [2, 0, 1, 3]}),
                node("Reshape", ["rnn/transpose_2", "rnn/out0_shape"], ["rnn"], "rnn/Reshape_2", {}),
                node("Transpose", ["rnn/onnx_out1"], ["rnn/transpose_3"], "rnn/Transpose_3", {"perm": [1, 0, 2]}),
                node("Reshape", ["rnn/transpose_3", "rnn/out1_shape"], ["rnn:1"], "rnn/Reshape_3", {}),
            ]
        "#]],
    );
}

#[test]
fn gru() {
    check(
        OneOp::new("GRU")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .bool("linear_before_reset", true)
            .weight("W", &[1, 12, 3])
            .weight("R", &[1, 12, 4])
            .weight("B", &[1, 24])
            .outputs(2),
        expect![[r#"
            initializers = [
                tensor("gru/W", 1, [1, 12, 3], weight(store, "gru/W")),
                tensor("gru/R", 1, [1, 12, 4], weight(store, "gru/R")),
                tensor("gru/B", 1, [1, 24], weight(store, "gru/B")),
                tensor("gru/out0_shape", 7, [3], bytes.fromhex("00000000000000000000000000000000ffffffffffffffff")),
                tensor("gru/out1_shape", 7, [2], bytes.fromhex("0000000000000000ffffffffffffffff")),
            ]
            nodes = [
                node("Transpose", ["x"], ["gru/transpose"], "gru", {"perm": [1, 0, 2]}),
                node("GRU", ["gru/transpose", "gru/W", "gru/R", "gru/B"], ["gru/onnx_out0", "gru/onnx_out1"], "gru/GRU", {"hidden_size": 4, "direction": "forward", "activations": ["Sigmoid", "Tanh"], "linear_before_reset": 1}),
                node("Transpose", ["gru/onnx_out0"], ["gru/transpose_1"], "gru/Transpose", {"perm": [2, 0, 1, 3]}),
                node("Reshape", ["gru/transpose_1", "gru/out0_shape"], ["gru"], "gru/Reshape", {}),
                node("Transpose", ["gru/onnx_out1"], ["gru/transpose_2"], "gru/Transpose_2", {"perm": [1, 0, 2]}),
                node("Reshape", ["gru/transpose_2", "gru/out1_shape"], ["gru:1"], "gru/Reshape_2", {}),
            ]
        "#]],
    );
}

#[test]
fn symbolic_reshape_targets_are_computed_from_the_inputs_shapes() {
    let (n, s) = (crate::ir::dim::symbol("N"), crate::ir::dim::symbol("S"));
    let ns = crate::ir::dim::mul(n, s).unwrap();
    check(
        OneOp::new("Reshape")
            .input("x", &[n, s, 768])
            .ints("shape", &[ns, 12, 64]),
        expect![[r#"
            initializers = [
                tensor("reshape/shape_2", 7, [2], bytes.fromhex("0c000000000000004000000000000000")),
            ]
            nodes = [
                node("Shape", ["x"], ["reshape/shape"], "reshape", {"start": 0, "end": 1}),
                node("Shape", ["x"], ["reshape/shape_1"], "reshape/Shape", {"start": 1, "end": 2}),
                node("Mul", ["reshape/shape", "reshape/shape_1"], ["reshape/mul"], "reshape/Mul", {}),
                node("Concat", ["reshape/mul", "reshape/shape_2"], ["reshape/concat"], "reshape/Concat", {"axis": 0}),
                node("Reshape", ["x", "reshape/concat"], ["reshape"], "reshape/Reshape", {}),
            ]
        "#]],
    );
}

#[test]
fn range_takes_scalars() {
    check(
        OneOp::new("Range")
            .int("start", 2)
            .int("limit", 9)
            .int("delta", 3),
        expect![[r#"
            initializers = [
                tensor("range/start", 7, [], bytes.fromhex("0200000000000000")),
                tensor("range/delta", 7, [], bytes.fromhex("0300000000000000")),
                tensor("range/limit", 7, [], bytes.fromhex("0900000000000000")),
            ]
            nodes = [
                node("Range", ["range/start", "range/limit", "range/delta"], ["range"], "range", {}),
            ]
        "#]],
    );
}
