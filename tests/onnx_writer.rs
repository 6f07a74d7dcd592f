//! The ONNX writer without Python: a small graph written and read back by our own ONNX reader
//! (same ops, same weights, same interpreter outputs), the hand-encoded protobuf framing with
//! inline and external data (decoded by prost), the one-message list of unsupported nodes, and
//! that a failed conversion writes nothing.
mod common;

use mmdnn::backends::onnx::{self, writer, Options};
use mmdnn::frontends::{self, SourceArgs};
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::passes::layout::Target;
use mmdnn::ir::passes::{self, Wants};
use mmdnn::ir::{AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::proto::onnx::{tensor_proto::DataLocation, ModelProto};
use mmdnn::weights::{MemoryWeights, Tensor, WeightReader};
use ndarray::{ArrayD, IxDyn};
use prost::Message;
use std::collections::HashMap;
use std::path::Path;

/// The pipeline's last two stages, as `convert` runs them: the graph prepared channels-first
/// (ONNX's layout), then written.
fn save(g: &Graph, w: &dyn WeightReader, path: &Path, opts: Options) -> anyhow::Result<()> {
    let wants = Wants {
        layout: Target::ChannelsFirst,
        io: Default::default(),
    };
    onnx::save(passes::prepare(g, w, wants)?, path, opts)?;
    Ok(())
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

/// x [N, 3, 6, 6] → Conv 3×3 (4 out) → Relu → GlobalPool → FullyConnected (300 wide, so its
/// weights pass the external-data threshold) → Softmax.
fn graph() -> (Graph, MemoryWeights) {
    let mut g = Graph::default();
    let mut w = MemoryWeights::default();
    let input = Node::new("x", "DataInput")
        .with_attr("dtype", AttrValue::Type(DType::F32))
        .with_attr("shape", AttrValue::Shape(vec![-1, 3, 6, 6]));
    let x = g.add(input).unwrap();
    g.inputs.push("x".into());
    let conv = Node::new("conv", "Conv")
        .with_inputs([x])
        .with_attr("kernel_shape", AttrValue::Ints(vec![3, 3]))
        .with_attr("pads", AttrValue::Ints(vec![1, 1, 1, 1]))
        .with_attr("out_channels", AttrValue::Int(4))
        .with_attr("use_bias", AttrValue::Bool(true));
    let c = g.add(conv).unwrap();
    w.insert(
        "conv",
        "weights",
        Tensor::from_f32(vec![4, 3, 3, 3], &values(108, 1)).unwrap(),
    );
    w.insert(
        "conv",
        "bias",
        Tensor::from_f32(vec![4], &values(4, 2)).unwrap(),
    );
    let r = g.add(Node::new("relu", "Relu").with_inputs([c])).unwrap();
    let p = Node::new("pool", "GlobalPool")
        .with_inputs([r])
        .with_attr("keepdims", AttrValue::Bool(false));
    let p = g.add(p).unwrap();
    let fc = Node::new("fc", "FullyConnected")
        .with_inputs([p])
        .with_attr("units", AttrValue::Int(300))
        .with_attr("use_bias", AttrValue::Bool(true));
    let f = g.add(fc).unwrap();
    w.insert(
        "fc",
        "weights",
        Tensor::from_f32(vec![4, 300], &values(1200, 3)).unwrap(),
    );
    w.insert(
        "fc",
        "bias",
        Tensor::from_f32(vec![300], &values(300, 4)).unwrap(),
    );
    let s = g
        .add(Node::new("softmax", "Softmax").with_inputs([f]))
        .unwrap();
    g.outputs.push(s);
    mmdnn::ir::validate::check(&mut g, Some(&w)).unwrap();
    (g, w)
}

fn run(g: &Graph, w: &dyn WeightReader) -> Vec<f32> {
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 3, 6, 6]), values(216, 9)).unwrap();
    let feeds = [(g.inputs[0].clone(), Value::F32(x))];
    let out = Interpreter::new(g, w).run(&feeds).unwrap();
    match &out[0] {
        Value::F32(a) => a.iter().copied().collect(),
        other => panic!("unexpected output {other:?}"),
    }
}

fn read_back(path: &Path) -> frontends::Loaded {
    let args = SourceArgs {
        network: Some(path.to_path_buf()),
        ..Default::default()
    };
    frontends::load("onnx", &args).unwrap()
}

fn decode(path: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap()
}

#[test]
fn round_trips_through_the_onnx_reader() {
    let (g, w) = graph();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    save(&g, &w, &path, Options::default()).unwrap();
    assert!(
        !writer::data_path(&path).exists(),
        "a small model stays inline"
    );
    let m = decode(&path);
    assert_eq!(m.opset_import[0].version, 17);
    assert_eq!(m.ir_version, 8);
    let graph = m.graph.unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(
        ops,
        [
            "Conv",
            "Relu",
            "GlobalAveragePool",
            "Flatten",
            "Gemm",
            "Softmax"
        ]
    );
    assert_eq!(graph.initializer.len(), 4);
    let fc = graph
        .initializer
        .iter()
        .find(|t| t.name == "fc/weights")
        .unwrap();
    assert_eq!(fc.dims, [4, 300]);
    assert_eq!(fc.raw_data.len(), 4800);
    let back = read_back(&path);
    let (a, b) = (run(&g, &w), run(&back.graph, back.weights.as_ref()));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
    }
}

#[test]
fn external_data_framing() {
    let (g, w) = graph();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let opts = Options {
        opset: Some(13),
        external_data: true,
    };
    save(&g, &w, &path, opts).unwrap();
    let data = std::fs::read(writer::data_path(&path)).unwrap();
    let m = decode(&path);
    assert_eq!((m.opset_import[0].version, m.ir_version), (13, 7));
    let graph = m.graph.unwrap();
    let mut external = 0;
    for t in &graph.initializer {
        let n = t.dims.iter().product::<i64>() as usize * 4;
        if n < writer::EXTERNAL_MIN as usize {
            assert_eq!(t.data_location, DataLocation::Default as i32, "{}", t.name);
            assert_eq!(t.raw_data.len(), n);
            continue;
        }
        external += 1;
        assert_eq!(t.data_location, DataLocation::External as i32);
        assert!(t.raw_data.is_empty());
        let kv: HashMap<&str, &str> = t
            .external_data
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(kv["location"], "m.onnx.data");
        let offset: usize = kv["offset"].parse().unwrap();
        let length: usize = kv["length"].parse().unwrap();
        assert_eq!(offset % writer::ALIGN as usize, 0);
        assert_eq!(length, n);
        let (node, param) = t.name.split_once('/').unwrap();
        assert_eq!(
            &data[offset..offset + length],
            &w.read(node, param).unwrap().data[..]
        );
    }
    assert_eq!(external, 2, "fc/weights and fc/bias are 1 KiB or more");
    let back = read_back(&path);
    assert_eq!(run(&g, &w), run(&back.graph, back.weights.as_ref()));
}

#[test]
fn unsupported_nodes_are_listed_at_once_and_nothing_is_written() {
    let (mut g, w) = graph();
    // Average pooling with dilations needs opset 19; two of them, and a node reading one.
    for (name, input) in [("bad1", "relu"), ("bad2", "relu")] {
        let n = Node::new(name, "Pool")
            .with_inputs([TensorRef::new(input, 0)])
            .with_attr("pooling_type", AttrValue::Str("AVG".into()))
            .with_attr("kernel_shape", AttrValue::Ints(vec![2, 2]))
            .with_attr("dilations", AttrValue::Ints(vec![2, 2]));
        let r = g.add(n).unwrap();
        g.outputs.push(r);
    }
    let after = g
        .add(Node::new("after", "Relu").with_inputs([TensorRef::new("bad1", 0)]))
        .unwrap();
    g.outputs.push(after);
    mmdnn::ir::validate::check(&mut g, Some(&w)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let opts = Options {
        opset: Some(17),
        external_data: true,
    };
    let err = format!("{:#}", save(&g, &w, &path, opts).unwrap_err());
    assert!(
        err.contains("cannot write 2 node(s) as ONNX opset 17 (ops: Pool)"),
        "{err}"
    );
    assert!(err.contains("node 'bad1' (Pool)") && err.contains("node 'bad2' (Pool)"));
    assert!(!err.contains("after"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Without --opset the model is written at the first opset that has dilated average pooling.
    save(&g, &w, &path, Options::default()).unwrap();
    let model = ModelProto::decode(&std::fs::read(&path).unwrap()[..]).unwrap();
    assert_eq!(model.opset_import[0].version, 19);
    std::fs::remove_file(&path).unwrap();
    let err = format!(
        "{:#}",
        save(
            &g,
            &w,
            &path,
            Options {
                opset: Some(12),
                ..Default::default()
            }
        )
        .unwrap_err()
    );
    assert!(err.contains("opset 12 is not supported"), "{err}");
}

/// x [3] + Cast(Constant `w` of `dtype`, float32): the narrow types' initializers.
fn narrow_constant_graph(dtype: DType, bytes: Vec<u8>) -> (Graph, MemoryWeights) {
    let (mut g, w, y) = common::narrow_constant_add(dtype, bytes, "y");
    g.outputs.push(y);
    mmdnn::ir::validate::check(&mut g, Some(&w)).unwrap();
    (g, w)
}

#[test]
fn narrow_initializers_are_packed_at_their_first_opset() {
    // INT4 [1, −1, 7] (one sign-extended byte each in the IR) packs low nibble first.
    let (g, w) = narrow_constant_graph(DType::I4, vec![1, 0xff, 7]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    save(&g, &w, &path, Options::default()).unwrap();
    let m = decode(&path);
    assert_eq!((m.opset_import[0].version, m.ir_version), (21, 10));
    let init = &m.graph.as_ref().unwrap().initializer;
    let t = init
        .iter()
        .find(|t| t.data_type == 22)
        .expect("an INT4 initializer");
    assert_eq!(
        (&t.raw_data[..], &t.dims[..]),
        (&[0xf1u8, 0x07][..], &[3i64][..])
    );
    // Read back by our reader: the same values.
    let l = frontends::load(
        "onnx",
        &SourceArgs {
            network: Some(path.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let x = Value::F32(ArrayD::zeros(IxDyn(&[3])));
    let y = Interpreter::new(&l.graph, l.weights.as_ref())
        .run(&[(l.graph.inputs[0].clone(), x)])
        .unwrap();
    assert_eq!(
        y[0].as_f32().unwrap().as_slice().unwrap(),
        &[1.0, -1.0, 7.0]
    );
    // A float8 constant needs opset 19; an explicit lower opset is refused, naming the type.
    let (g, w) = narrow_constant_graph(DType::F8E4M3FN, vec![0x38, 0xb8, 0x7e]);
    let opts = Options {
        opset: Some(17),
        ..Default::default()
    };
    let err = format!("{:#}", save(&g, &w, &path, opts).unwrap_err());
    assert!(
        err.contains("float8_e4m3fn") && err.contains("opset 19"),
        "{err}"
    );
    save(&g, &w, &path, Options::default()).unwrap();
    assert_eq!(decode(&path).opset_import[0].version, 19);
}
