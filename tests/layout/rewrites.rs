//! Unit tests of the layout pass's rewrites on small hand-built graphs.
use crate::builder::random_graph;
use crate::common::{compare, describe, ints, random_inputs, transposes, Rng};
use mmdnn::ir::passes::layout::{convert_layout, LayoutResult, Target};
use mmdnn::ir::{AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor, WeightReader};

/// Builds a graph from (name, op, inputs, attrs) rows; the first row must be the input.
fn graph(rows: Vec<Node>, outputs: &[&str]) -> Graph {
    let mut g = Graph::default();
    for n in rows {
        if n.op == "DataInput" {
            g.inputs.push(n.name.clone());
        }
        g.add(n).unwrap();
    }
    g.outputs = outputs.iter().map(|o| TensorRef::parse(o)).collect();
    g
}

fn input(name: &str, shape: &[i64]) -> Node {
    Node::new(name, "DataInput")
        .with_attr("dtype", AttrValue::Type(DType::F32))
        .with_attr("shape", AttrValue::Shape(shape.to_vec()))
}

fn op(name: &str, op: &str, inputs: &[&str]) -> Node {
    Node::new(name, op).with_inputs(inputs.iter().map(|i| TensorRef::parse(i)))
}

fn conv_cl(name: &str, x: &str, cin: usize, out: usize, w: &mut MemoryWeights) -> Node {
    let mut rng = Rng(name.len() as u64);
    let v: Vec<f32> = (0..9 * cin * out).map(|_| rng.uniform()).collect();
    w.insert(
        name,
        "weights",
        Tensor::from_f32(vec![3, 3, cin, out], &v).unwrap(),
    );
    op(name, "Conv", &[x])
        .with_attr("kernel_shape", ints(&[3, 3]))
        .with_attr("pads", ints(&[1, 0, 1, 2]))
        .with_attr("out_channels", AttrValue::Int(out as i64))
        .with_attr("data_format", AttrValue::Str("channels_last".into()))
}

fn assert_same(g: &Graph, w: &dyn WeightReader, res: &LayoutResult) {
    let feeds = random_inputs(g, 2, 7);
    let err = compare(g, w, res, &feeds);
    assert!(err <= 1e-5, "error {err}\n{}", describe(&res.graph));
}

fn logged(res: &LayoutResult, text: &str) -> bool {
    res.log.iter().any(|l| l.contains(text))
}

#[test]
fn conv_switches_format_and_permutes_kernel_lazily() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[-1, 6, 5, 3]),
            conv_cl("conv1", "x", 3, 4, &mut w),
        ],
        &["conv1"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(
            &res,
            "conv1: data_format channels_last→channels_first, weights [*k,in,out]→[out,in,*k]"
        ),
        "{:?}",
        res.log
    );
    assert_eq!(res.input_perms, vec![Some(vec![0, 3, 1, 2])]);
    assert_eq!(res.output_perms, vec![Some(vec![0, 3, 1, 2])]);
    assert_eq!(transposes(&res.graph), 0);
    let x = res.graph.node("x").unwrap();
    assert_eq!(x.attrs["shape"], AttrValue::Shape(vec![-1, 3, 6, 5]));
    let info = res.weights.info("conv1", "weights").unwrap();
    assert_eq!(info.shape, vec![4, 3, 3, 3]);
    let t = res.weights.read("conv1", "weights").unwrap();
    assert_eq!(t.info, info);
    // [out, in, kh, kw] element (o, i, a, b) is the source's (a, b, i, o).
    let src = w.read("conv1", "weights").unwrap().to_f32();
    let got = t.to_f32();
    let (o, i, a, b) = (3, 1, 2, 0);
    assert_eq!(
        got[((o * 3 + i) * 3 + a) * 3 + b],
        src[((a * 3 + b) * 3 + i) * 4 + o]
    );
    assert_eq!(
        res.weights.keys(),
        vec![("conv1".to_string(), "weights".to_string())]
    );
    assert_same(&g, &w, &res);
}

#[test]
fn keep_io_inserts_transposes_only_at_the_boundary() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[2, 6, 5, 3]),
            conv_cl("c1", "x", 3, 4, &mut w),
            op("r", "Relu", &["c1"]),
            conv_cl("c2", "r", 4, 2, &mut w),
        ],
        &["c2"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, true).unwrap();
    assert_eq!(transposes(&res.graph), 2, "{}", describe(&res.graph));
    assert_eq!(res.input_perms, vec![None]);
    assert_eq!(res.output_perms, vec![None]);
    assert_eq!(
        res.graph.node("x").unwrap().attrs["shape"],
        AttrValue::Shape(vec![2, 6, 5, 3])
    );
    assert_same(&g, &w, &res);
}

#[test]
fn inverse_transpose_pairs_cancel() {
    // NHWC input transposed to NCHW for a channels_first conv and back: converting to
    // channels_last leaves no Transpose at all.
    let mut w = MemoryWeights::default();
    let v: Vec<f32> = (0..2 * 3 * 9).map(|i| i as f32 / 50.0).collect();
    w.insert(
        "conv",
        "weights",
        Tensor::from_f32(vec![2, 3, 3, 3], &v).unwrap(),
    );
    let g = graph(
        vec![
            input("x", &[1, 5, 5, 3]),
            op("to_cf", "Transpose", &["x"]).with_attr("perm", ints(&[0, 3, 1, 2])),
            op("conv", "Conv", &["to_cf"])
                .with_attr("kernel_shape", ints(&[3, 3]))
                .with_attr("out_channels", AttrValue::Int(2)),
            op("to_cl", "Transpose", &["conv"]).with_attr("perm", ints(&[0, 2, 3, 1])),
            op("relu", "Relu", &["to_cl"]),
        ],
        &["relu"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsLast, false).unwrap();
    assert_eq!(transposes(&res.graph), 0, "{}", describe(&res.graph));
    assert_eq!(res.input_perms, vec![None]);
    assert_eq!(res.output_perms, vec![None]);
    assert!(logged(&res, "to_cf: Transpose [0, 3, 1, 2] absorbed"));
    assert_same(&g, &w, &res);
}

#[test]
fn flatten_into_dense_permutes_weight_rows() {
    let mut w = MemoryWeights::default();
    let mut rng = Rng(3);
    let fc: Vec<f32> = (0..4 * 4 * 2 * 3).map(|_| rng.uniform()).collect();
    w.insert(
        "fc1",
        "weights",
        Tensor::from_f32(vec![32, 3], &fc).unwrap(),
    );
    let g = graph(
        vec![
            input("x", &[1, 4, 4, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            op("flatten_1", "Flatten", &["conv"]),
            op("fc1", "FullyConnected", &["flatten_1"]).with_attr("units", AttrValue::Int(3)),
        ],
        &["fc1"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(&res, "flatten_1→fc1: FullyConnected weight rows permuted"),
        "{:?}",
        res.log
    );
    assert_eq!(transposes(&res.graph), 0);
    assert_eq!(res.output_perms, vec![None]);
    assert_same(&g, &w, &res);

    // A flattening Reshape does the same, also with an unknown batch.
    let mut g2 = g.clone();
    g2.nodes[0] = input("x", &[-1, 4, 4, 3]);
    let i = g2.nodes.iter().position(|n| n.name == "flatten_1").unwrap();
    g2.nodes[i] = op("flatten_1", "Reshape", &["conv"]).with_attr("shape", ints(&[0, -1]));
    let res = convert_layout(&g2, &w, Target::ChannelsFirst, false).unwrap();
    assert!(logged(
        &res,
        "flatten_1→fc1: FullyConnected weight rows permuted"
    ));
    assert_eq!(transposes(&res.graph), 0);
    assert_same(&g2, &w, &res);
}

#[test]
fn flatten_with_other_consumers_gets_a_transpose() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[1, 4, 4, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            op("flat", "Flatten", &["conv"]),
            op("soft", "Softmax", &["flat"]),
        ],
        &["soft"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(logged(&res, "flat: Transpose inserted"), "{:?}", res.log);
    assert_eq!(transposes(&res.graph), 1);
    assert_same(&g, &w, &res);
}

#[test]
fn axis_attributes_are_renamed() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[1, 5, 5, 3]),
            conv_cl("a", "x", 3, 2, &mut w),
            conv_cl("b", "x", 3, 4, &mut w),
            op("concat", "Concat", &["a", "b"]).with_attr("axis", AttrValue::Int(3)),
            op("soft", "Softmax", &["concat"]).with_attr("axis", AttrValue::Int(-1)),
            op("pad", "Pad", &["soft"]).with_attr("pads", ints(&[0, 1, 2, 0, 0, 0, 1, 1])),
            op("mean", "ReduceMean", &["pad"])
                .with_attr("axes", ints(&[1, 2]))
                .with_attr("keepdims", AttrValue::Bool(false)),
        ],
        &["mean"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(logged(&res, "concat: axis 3→1"), "{:?}", res.log);
    assert!(logged(&res, "soft: axis 3→1"));
    assert!(logged(
        &res,
        "pad: pads [0, 1, 2, 0, 0, 0, 1, 1]→[0, 0, 1, 2, 0, 1, 0, 1]"
    ));
    assert!(logged(&res, "mean: axes [1, 2]→[2, 3]"));
    assert_eq!(transposes(&res.graph), 0);
    // ReduceMean without keepdims leaves [N, C]: not an image, so nothing to report.
    assert_eq!(res.output_perms, vec![None]);
    assert_same(&g, &w, &res);
}

#[test]
fn reshape_is_rewritten_or_gets_a_transpose() {
    let mut w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[2, 4, 6, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            // [N, H, W, C] → [N, H·W, C]: only spatial dims merge.
            op("reshape_1", "Reshape", &["conv"]).with_attr("shape", ints(&[0, -1, 2])),
            op("s1", "Softmax", &["reshape_1"]).with_attr("axis", AttrValue::Int(2)),
            // [N, H, W, C] → [N, H, W·C]: mixes the channels in.
            op("reshape_2", "Reshape", &["conv"]).with_attr("shape", ints(&[0, 4, -1])),
        ],
        &["s1", "reshape_2"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(
            &res,
            "reshape_1: shape → [2, 2, 24], output permuted [0, 2, 1]"
        ),
        "{:?}",
        res.log
    );
    assert!(logged(&res, "s1: axis 2→1"));
    assert!(logged(&res, "reshape_2: Transpose inserted"));
    assert_eq!(transposes(&res.graph), 1, "{}", describe(&res.graph));
    // s1 is [N, L, C]: a 1-d channels_last image, reported in channels_first.
    assert_eq!(res.output_perms, vec![Some(vec![0, 2, 1]), None]);
    assert_same(&g, &w, &res);
}

#[test]
fn broadcast_constants_are_permuted() {
    let mut w = MemoryWeights::default();
    w.insert(
        "bias",
        "value",
        Tensor::from_f32(vec![2], &[0.5, -1.0]).unwrap(),
    );
    w.insert("one", "value", Tensor::from_f32(vec![1], &[2.0]).unwrap());
    let constant = |name: &str, shape: &[i64]| {
        Node::new(name, "Constant")
            .with_attr("dtype", AttrValue::Type(DType::F32))
            .with_attr("shape", AttrValue::Shape(shape.to_vec()))
    };
    let g = graph(
        vec![
            input("x", &[1, 4, 4, 3]),
            conv_cl("conv", "x", 3, 2, &mut w),
            constant("bias", &[2]),
            constant("one", &[1]),
            op("add", "Add", &["conv", "bias"]),
            op("mul", "Mul", &["one", "add"]),
            op("bias_user", "Relu", &["bias"]),
            op("other", "Sub", &["conv", "bias_user"]),
        ],
        &["mul", "other"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert!(
        logged(
            &res,
            "bias: constant value [2] → [1, 2, 1, 1] as 'bias_permuted'"
        ),
        "{:?}",
        res.log
    );
    assert_eq!(
        res.weights.info("bias_permuted", "value").unwrap().shape,
        vec![1, 2, 1, 1]
    );
    assert_eq!(res.weights.info("bias", "value").unwrap().shape, vec![2]);
    assert_eq!(
        res.weights.read("bias_permuted", "value").unwrap().to_f32(),
        vec![0.5, -1.0]
    );
    // The computed [2] operand of `other` is lifted and transposed instead.
    assert_eq!(transposes(&res.graph), 1, "{}", describe(&res.graph));
    assert!(res.graph.node("bias_user_unsqueeze").is_some());
    assert_same(&g, &w, &res);
}

#[test]
fn graphs_already_in_the_target_layout_are_unchanged() {
    let mut tried = 0;
    for seed in 0..40 {
        let (g, w, _) = random_graph(seed, seed % 2 == 1);
        if transposes(&g) > 0 {
            continue; // a source Transpose pair would be cancelled
        }
        tried += 1;
        let target = if seed % 2 == 1 {
            Target::ChannelsLast
        } else {
            Target::ChannelsFirst
        };
        let res = convert_layout(&g, &w, target, false).unwrap();
        assert!(res
            .input_perms
            .iter()
            .chain(&res.output_perms)
            .all(Option::is_none));
        let key = |n: &Node| {
            (
                n.name.clone(),
                n.op.clone(),
                n.inputs.clone(),
                n.attrs.clone(),
            )
        };
        let mut a: Vec<_> = g.nodes.iter().map(key).collect();
        let mut b: Vec<_> = res.graph.nodes.iter().map(key).collect();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(res.graph.outputs, g.outputs);
    }
    assert!(tried >= 10);
}

#[test]
fn source_transposes_of_graphs_already_in_the_target_layout_stay() {
    // A channels_first graph whose output is a Transpose that looks like a layout switch: it is
    // no image output of a switched graph, so its data keeps the source's order.
    let w = MemoryWeights::default();
    let g = graph(
        vec![
            input("x", &[2, 3, 4]),
            op("t", "Transpose", &["x"]).with_attr("perm", ints(&[0, 2, 1])),
        ],
        &["t"],
    );
    let res = convert_layout(&g, &w, Target::ChannelsFirst, false).unwrap();
    assert_eq!(res.output_perms, vec![None]);
    assert_eq!(transposes(&res.graph), 1, "{}", describe(&res.graph));
    assert_same(&g, &w, &res);
}

#[test]
fn errors_name_the_node() {
    let mut w = MemoryWeights::default();
    let mut g = graph(
        vec![
            input("x", &[1, 5, 5, 3]),
            conv_cl("bad_conv", "x", 3, 2, &mut w),
        ],
        &["bad_conv"],
    );
    w.insert(
        "bad_conv",
        "weights",
        Tensor::from_f32(vec![18, 2], &[0.0; 36]).unwrap(),
    );
    let err = convert_layout(&g, &w, Target::ChannelsFirst, false)
        .err()
        .unwrap();
    let text = format!("{err:#}");
    assert!(text.contains("'bad_conv' (Conv)"), "{text}");
    g.outputs.clear();
    let err = convert_layout(&g, &w, Target::ChannelsFirst, false)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("needs a valid graph"));
}
