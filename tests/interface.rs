//! A converted model keeps the source's interface (inputs and outputs, their order, names,
//! types, shapes and layout) unless `--io-layout` asks for a layout change, and the summary
//! reports every change made at the interface. One test per rule, through the CLI.
use assert_cmd::Command;
use mmdnn::ir::{serialize, AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::proto::onnx::{
    attribute_proto::AttributeType, tensor_proto, tensor_shape_proto, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use mmdnn::weights::{npy, MemoryWeights, Tensor};
use prost::Message;
use serde_json::Value as Json;
use std::io::Read;
use std::path::{Path, PathBuf};

fn mmdnn() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("mmdnn"))
}

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

fn stdout_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value as V, Dimension};
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: tensor_proto::DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(V::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn onnx_node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("n_{output}"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// An NHWC model as TensorFlow exporters write them: `input` [1, 8, 8, 3] → Transpose to NCHW
/// → Conv 3×3 (4 channels) → Transpose back → `y` [1, 8, 8, 4].
fn nhwc_onnx(path: &Path) {
    let w: Vec<f32> = (0..4 * 3 * 3 * 3)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let weight = TensorProto {
        name: "w".into(),
        dims: vec![4, 3, 3, 3],
        data_type: tensor_proto::DataType::Float as i32,
        raw_data: w.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![
                onnx_node(
                    "Transpose",
                    &["input"],
                    "nchw",
                    vec![ints("perm", &[0, 3, 1, 2])],
                ),
                onnx_node(
                    "Conv",
                    &["nchw", "w"],
                    "c",
                    vec![ints("pads", &[1, 1, 1, 1])],
                ),
                onnx_node("Transpose", &["c"], "y", vec![ints("perm", &[0, 2, 3, 1])]),
            ],
            initializer: vec![weight],
            input: vec![value_info("input", &[1, 8, 8, 3])],
            output: vec![value_info("y", &[1, 8, 8, 4])],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

/// (name, dims) of each input or output of a model.
type Tensors = Vec<(String, Vec<i64>)>;

/// (name, dims) of each input and output of an ONNX file.
fn onnx_interface(path: &Path) -> (Tensors, Tensors) {
    let m = ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    let g = m.graph.unwrap();
    let io = |v: &[ValueInfoProto]| -> Tensors {
        v.iter()
            .map(|v| {
                let Some(type_proto::Value::TensorType(t)) =
                    v.r#type.as_ref().and_then(|t| t.value.as_ref())
                else {
                    panic!("{} is no tensor", v.name)
                };
                let dims = t.shape.as_ref().unwrap().dim.iter();
                let dims = dims.map(|d| match d.value {
                    Some(tensor_shape_proto::dimension::Value::DimValue(v)) => v,
                    _ => -1,
                });
                (v.name.clone(), dims.collect())
            })
            .collect()
    };
    (io(&g.input), io(&g.output))
}

fn convert(
    src: &Path,
    sf: &str,
    df: &str,
    out: &Path,
    extra: &[&str],
) -> assert_cmd::assert::Assert {
    mmdnn()
        .args(["convert", "-sf", sf, "-iw"])
        .arg(src)
        .args(["-df", df, "-om"])
        .arg(out)
        .args(extra)
        .assert()
}

/// `mmdnn run` on `model` with random inputs (seed 3): its outputs.
fn run(model: &Path, out: &Path) -> Vec<Tensor> {
    let run = mmdnn()
        .args(["run", "-n"])
        .arg(model)
        .args(["--random-input", "--seed", "3", "-o"])
        .arg(out)
        .assert()
        .success();
    stdout_of(&run)
        .lines()
        .filter_map(|l| l.split("-> ").nth(1))
        .map(|f| npy::read_file(Path::new(f)).unwrap())
        .collect()
}

/// max |a - b| ≤ 1e-4 · max(1, |b|) elementwise, same shapes.
fn assert_close(a: &Tensor, b: &Tensor) {
    assert_eq!(a.info.shape, b.info.shape);
    for (x, r) in a.to_f32().iter().zip(b.to_f32()) {
        assert!((x - r).abs() <= 1e-4 * r.abs().max(1.0), "{x} vs {r}");
    }
}

#[test]
fn an_nhwc_onnx_input_stays_nhwc_in_onnx_and_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("nhwc.onnx");
    nhwc_onnx(&src);
    convert(&src, "onnx", "onnx", &d.join("out.onnx"), &[]).success();
    let (inputs, outputs) = onnx_interface(&d.join("out.onnx"));
    assert_eq!(inputs, [("input".to_string(), vec![1, 8, 8, 3])]);
    assert_eq!(outputs, [("y".to_string(), vec![1, 8, 8, 4])]);
    // The same function of the same input: both run at the source's interface.
    let (a, b) = (
        run(&src, &d.join("a")),
        run(&d.join("out.onnx"), &d.join("b")),
    );
    assert_eq!(a.len(), 1);
    assert_close(&b[0], &a[0]);
    // PyTorch: forward() takes `input` [N, 8, 8, 3].
    convert(&src, "onnx", "pytorch", &d.join("out.pth"), &[]).success();
    let code = std::fs::read_to_string(d.join("out.py")).unwrap();
    assert!(code.contains("def forward(self, input):"), "{code}");
    assert!(
        code.contains("(\"input\", (1, 8, 8, 3), torch.float32)"),
        "{code}"
    );
    assert!(code.contains("y: float32[1, 8, 8, 4]"), "{code}");
}

#[test]
fn an_input_named_input_keeps_its_name_and_a_keyword_is_renamed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("nhwc.onnx");
    nhwc_onnx(&src);
    let out = convert(&src, "onnx", "pytorch", &d.join("a.pth"), &["--json"]).success();
    let doc: Json = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(doc["inputs"][0]["name"], "input");
    assert_eq!(doc["interface"], serde_json::json!([]), "{doc}");
    // A Python keyword cannot be an argument: renamed, and the summary says so.
    let mut bytes = std::fs::read(&src).unwrap();
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.input[0].name = "lambda".into();
    g.node[0].input[0] = "lambda".into();
    bytes = m.encode_to_vec();
    std::fs::write(d.join("kw.onnx"), bytes).unwrap();
    let out = convert(&d.join("kw.onnx"), "onnx", "pytorch", &d.join("b.pth"), &[]).success();
    let err = stderr_of(&out);
    assert!(
        err.contains("input lambda renamed lambda_1: as a forward() argument, \"lambda\" is a Python keyword"),
        "{err}"
    );
    let code = std::fs::read_to_string(d.join("b.py")).unwrap();
    assert!(code.contains("def forward(self, lambda_1):"), "{code}");
}

/// An IR whose output `hn` is a channels_last Conv: converted channels-first, its value leaves
/// the graph through a Transpose back to the source's layout.
fn ir_with_channels_last_output(dir: &Path) -> PathBuf {
    let mut g = Graph::default();
    let x = g
        .add(
            Node::new("x", "DataInput")
                .with_attr("dtype", AttrValue::Type(DType::F32))
                .with_attr("shape", AttrValue::Shape(vec![1, 6, 6, 2])),
        )
        .unwrap();
    g.inputs.push("x".into());
    let hn = g
        .add(
            Node::new("hn", "Conv")
                .with_inputs([x])
                .with_attr("kernel_shape", AttrValue::Ints(vec![3, 3]))
                .with_attr("pads", AttrValue::Ints(vec![1, 1, 1, 1]))
                .with_attr("out_channels", AttrValue::Int(3))
                .with_attr("data_format", AttrValue::Str("channels_last".into())),
        )
        .unwrap();
    g.outputs.push(hn);
    let mut w = MemoryWeights::default();
    let v: Vec<f32> = (0..3 * 3 * 2 * 3).map(|i| (i % 5) as f32 / 4.0).collect();
    w.insert(
        "hn",
        "weights",
        Tensor::from_f32(vec![3, 3, 2, 3], &v).unwrap(),
    );
    mmdnn::ir::validate::check(&mut g, Some(&w)).unwrap();
    let prefix = dir.join("ir");
    let files = serialize::write_ir(&g, &w, &prefix).unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        assert!(f.exists(), "{}", f.display());
    }
    prefix
}

#[test]
fn an_output_leaving_through_a_layout_transpose_keeps_the_source_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prefix = ir_with_channels_last_output(d);
    let out = mmdnn()
        .args(["convert", "-sf", "mmdnn", "-in"])
        .arg(prefix.with_extension("pb"))
        .arg("-iw")
        .arg(prefix.with_extension("npz"))
        .args(["-df", "onnx", "-om"])
        .arg(d.join("m.onnx"))
        .assert()
        .success();
    let (inputs, outputs) = onnx_interface(&d.join("m.onnx"));
    assert_eq!(inputs, [("x".to_string(), vec![1, 6, 6, 2])]);
    assert_eq!(outputs, [("hn".to_string(), vec![1, 6, 6, 3])]);
    let m = ModelProto::decode(std::fs::read(d.join("m.onnx")).unwrap().as_slice()).unwrap();
    let last = m
        .graph
        .unwrap()
        .node
        .into_iter()
        .find(|n| n.output == ["hn"]);
    assert_eq!(last.map(|n| n.op_type), Some("Transpose".to_string()));
    assert!(stderr_of(&out).contains("outputs:\n  hn  float32[1, 6, 6, 3]"));
    let (a, b) = (
        run(&prefix.with_extension("pb"), &d.join("a")),
        run(&d.join("m.onnx"), &d.join("b")),
    );
    assert_close(&b[0], &a[0]);
}

/// The output layer names a `.keras` file's config.json declares.
fn keras_output_layers(path: &Path) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("config.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let config: Json = serde_json::from_str(&text).unwrap();
    config["config"]["output_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[0].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn keras_to_onnx_outputs_are_named_after_the_output_layers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/k3_mixed/model.keras");
    let want = keras_output_layers(&src);
    assert_eq!(want.len(), 2);
    convert(&src, "keras", "onnx", &d.join("m.onnx"), &[]).success();
    let (_, outputs) = onnx_interface(&d.join("m.onnx"));
    let names: Vec<String> = outputs.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, want);
    // The IR keeps them too.
    mmdnn()
        .args(["toir", "-f", "keras", "-w"])
        .arg(&src)
        .arg("-o")
        .arg(d.join("ir"))
        .assert()
        .success();
    let serialize::IrFile::Native(g) = serialize::load(&d.join("ir.pb")).unwrap() else {
        panic!("not an mmdnn IR")
    };
    let names: Vec<String> = (0..g.outputs.len()).map(|i| g.output_name(i)).collect();
    assert_eq!(names, want);
    assert_ne!(
        g.outputs[0],
        TensorRef::parse(&want[0]),
        "the test needs a renamed tensor"
    );
}

#[test]
fn io_layout_changes_the_interface_and_the_summary_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("nhwc.onnx");
    nhwc_onnx(&src);
    let flag = ["--io-layout", "channels_first"];
    let out = convert(&src, "onnx", "onnx", &d.join("cf.onnx"), &flag).success();
    let (inputs, outputs) = onnx_interface(&d.join("cf.onnx"));
    assert_eq!(inputs, [("input".to_string(), vec![1, 3, 8, 8])]);
    assert_eq!(outputs, [("y".to_string(), vec![1, 4, 8, 8])]);
    let err = stderr_of(&out);
    for want in [
        "input input: now fed transposed by [0, 3, 1, 2] (the source's [1, 8, 8, 3], now float32[1, 3, 8, 8])",
        "output y: now produced transposed by [0, 3, 1, 2]",
    ] {
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
    // --json lists them as objects; only the named input changes with NAME.
    let flag = ["--io-layout", "channels_first:input", "--json"];
    let out = convert(&src, "onnx", "pytorch", &d.join("cf.pth"), &flag).success();
    let doc: Json = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(
        doc["interface"],
        serde_json::json!([{"change": "layout", "kind": "input", "name": "input",
                            "perm": [0, 3, 1, 2], "type": "float32[1, 3, 8, 8]"}])
    );
    let code = std::fs::read_to_string(d.join("cf.py")).unwrap();
    assert!(
        code.contains("(\"input\", (1, 3, 8, 8), torch.float32)"),
        "{code}"
    );
    // A name the model does not have is a usage error; --keep-layout is the default.
    let flag = ["--io-layout", "channels_last:nope"];
    let out = convert(&src, "onnx", "onnx", &d.join("x.onnx"), &flag).code(2);
    assert!(
        stderr_of(&out).contains("--io-layout names nope"),
        "{}",
        stderr_of(&out)
    );
    convert(&src, "onnx", "onnx", &d.join("k.onnx"), &["--keep-layout"]).success();
    assert_eq!(onnx_interface(&d.join("k.onnx")).0[0].1, [1, 8, 8, 3]);
}
