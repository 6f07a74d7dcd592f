//! What the commands tell the user: `inspect` reports every unsupported op and names the
//! framework of any model file, even one no reader exists for yet; `run` names its files after
//! the outputs, with a manifest; conversions end with a summary (`--quiet`, `--json`); exit
//! codes are 0, 1 or 2, and a closed pipe never makes a command panic.
use assert_cmd::Command;
use mmdnn::ir::{serialize, validate, AttrValue, DType, Graph, Node};
use mmdnn::proto::onnx::{
    tensor_proto, tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use mmdnn::weights::MemoryWeights;
use predicates::prelude::*;
use prost::Message;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

fn mmdnn() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("mmdnn"))
}

fn keras_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(name)
}

/// The example MMdnn IR written as an mmdnn IR: `<dir>/ir.pb`, `<dir>/ir.npz`.
fn ir(dir: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mmdnn-ir");
    let prefix = dir.join("ir");
    mmdnn()
        .args(["toir", "-f", "mmdnn", "-n"])
        .arg(example.join("keras_tiny.pb"))
        .arg("-w")
        .arg(example.join("keras_tiny.npy"))
        .arg("-o")
        .arg(&prefix)
        .arg("--quiet")
        .assert()
        .success();
    prefix
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

fn onnx_node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("n_{output}"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// x [1, 4] → Relu → FooOp, BarOp → Add → y: two ops no reader supports.
fn onnx_with_unsupported_ops(path: &Path) {
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![
                onnx_node("Relu", &["x"], "r"),
                onnx_node("FooOp", &["r"], "a"),
                onnx_node("BarOp", &["r"], "b"),
                onnx_node("Add", &["a", "b"], "y"),
            ],
            input: vec![value_info("x", &[1, 4])],
            output: vec![value_info("y", &[1, 4])],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

fn stdout_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

#[test]
fn inspect_reports_every_unsupported_op_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    onnx_with_unsupported_ops(&model);
    let out = mmdnn().arg("inspect").arg(&model).assert().code(1);
    let text = stdout_of(&out);
    for want in [
        "framework: onnx",
        "inputs:",
        "x  float32[1, 4]",
        "FooOp",
        "BarOp",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    let out = mmdnn()
        .arg("inspect")
        .arg(&model)
        .arg("--json")
        .assert()
        .code(1);
    let doc: Json = serde_json::from_str(&stdout_of(&out)).expect("JSON on stdout");
    assert_eq!(doc["ok"], Json::Bool(false));
    assert_eq!(doc["framework"], "onnx");
    assert_eq!(doc["inputs"][0]["name"], "x");
    let problems = doc["problems"].to_string();
    assert!(
        problems.contains("FooOp") && problems.contains("BarOp"),
        "{doc}"
    );
}

#[test]
fn inspect_names_the_weights_it_counts() {
    let h5 = keras_fixture("k2_conv/model.h5");
    let out = mmdnn().arg("inspect").arg(&h5).assert().success();
    let text = stdout_of(&out);
    assert!(!text.contains("none found"), "{text}");
    assert!(
        text.contains(&format!("weights:   {} (in the model file)", h5.display())),
        "{text}"
    );
    assert!(text.contains("framework: keras"), "{text}");
    // A separate weights file is named as given.
    let json = keras_fixture("k2_rnn/model.json");
    let weights = keras_fixture("k2_rnn/weights.h5");
    let out = mmdnn()
        .arg("inspect")
        .arg(&json)
        .arg("-w")
        .arg(&weights)
        .arg("--json")
        .assert()
        .success();
    let doc: Json = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(doc["weights"], weights.display().to_string());
    assert!(doc["parameters"].as_u64().unwrap() > 0, "{doc}");
}

#[test]
fn inspect_takes_the_framework_flag() {
    let h5 = keras_fixture("k2_conv/model.h5");
    // -f picks the reader: the ONNX reader refuses an HDF5 file.
    mmdnn()
        .args(["inspect", "-f", "onnx"])
        .arg(&h5)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not an ONNX model"));
    mmdnn()
        .args(["inspect", "--framework", "keras"])
        .arg(&h5)
        .assert()
        .success();
}

/// Writes `bytes` to `dir/name` and returns the path.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A zip holding empty files of these names.
fn zip_of(names: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(vec![]);
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for n in names {
            z.start_file(*n, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"x").unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn formats_without_a_reader_are_named_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A TensorFlow GraphDef: node { name: "x" op: "Placeholder" attr { key: "dtype" ... } }.
    let attr_entry = [&[0x0a, 5][..], b"dtype", &[0x12, 2, 0x30, 1]].concat();
    let node = [
        &[0x0a, 1][..],
        b"x",
        &[0x12, 11],
        b"Placeholder",
        &[0x2a, attr_entry.len() as u8],
        &attr_entry,
    ]
    .concat();
    let graphdef = [&[0x0a, node.len() as u8][..], &node].concat();
    // SavedModel: saved_model_schema_version: 1, meta_graphs { ... }.
    let saved_model = [&[0x08, 0x01, 0x12, 2][..], &[0x0a, 0]].concat();
    let mut tflite = vec![0x1c, 0, 0, 0];
    tflite.extend_from_slice(b"TFL3");
    tflite.extend_from_slice(&[0; 24]);
    let cases: Vec<(PathBuf, &str)> = vec![
        (file(d, "frozen.pb", &graphdef), "TensorFlow"),
        (file(d, "sm/saved_model.pb", &saved_model), "SavedModel"),
        (d.join("sm"), "SavedModel"),
        (file(d, "model.tflite", &tflite), "TensorFlow Lite"),
        (file(d, "noext", &tflite), "TensorFlow Lite"),
        (
            file(
                d,
                "net.prototxt",
                b"name: \"Net\"\nlayer {\n  name: \"data\"\n}\n",
            ),
            "caffe",
        ),
        (
            file(d, "w.caffemodel", &[0x0a, 3, b'N', b'e', b't']),
            "caffe",
        ),
        (
            file(
                d,
                "yolo.cfg",
                b"[net]\nbatch=1\n\n[convolutional]\nfilters=32\n",
            ),
            "darknet",
        ),
        (
            file(d, "legacy.pt", &[0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc]),
            "pickle",
        ),
        (
            file(
                d,
                "model.pt",
                &zip_of(&["archive/data.pkl", "archive/version"]),
            ),
            "pytorch",
        ),
        (
            file(
                d,
                "checkpoint.pth",
                &zip_of(&["model/data.pkl", "model/data/0"]),
            ),
            "pytorch",
        ),
    ];
    for (path, name) in &cases {
        let out = mmdnn().arg("inspect").arg(path).assert().code(1);
        let err = stderr_of(&out);
        assert!(
            err.contains(name) && err.contains(&path.display().to_string()),
            "{}: {err}",
            path.display()
        );
        assert!(!err.contains("wire type"), "{}: {err}", path.display());
        // `run` tells the same.
        let out = mmdnn()
            .args(["run", "--random-input", "-o"])
            .arg(d.join("out"))
            .arg("-n")
            .arg(path)
            .assert()
            .code(1);
        assert!(stderr_of(&out).contains(name), "run {}", path.display());
    }
    // A .keras archive is still the Keras reader's, and an IR .pb the IR reader's.
    mmdnn()
        .arg("inspect")
        .arg(keras_fixture("k3_mixed/model.keras"))
        .assert()
        .success();
    let prefix = ir(d);
    mmdnn()
        .arg("inspect")
        .arg(prefix.with_extension("pb"))
        .assert()
        .success();
}

/// x [1, 3] → Relu "a/b", Sigmoid "a_b", Tanh "A_B": three names that clash as file names.
fn clashing_outputs(dir: &Path) -> PathBuf {
    let mut g = Graph::default();
    g.inputs.push("x".into());
    let x = g
        .add(
            Node::new("x", "DataInput")
                .with_attr("dtype", AttrValue::Type(DType::F32))
                .with_attr("shape", AttrValue::Shape(vec![1, 3])),
        )
        .unwrap();
    let a = g
        .add(Node::new("a/b", "Relu").with_inputs([x.clone()]))
        .unwrap();
    let b = g
        .add(Node::new("a_b", "Sigmoid").with_inputs([x.clone()]))
        .unwrap();
    let c = g.add(Node::new("A_B", "Tanh").with_inputs([x])).unwrap();
    g.outputs = vec![a, b, c];
    let w = MemoryWeights::default();
    validate::check(&mut g, Some(&w)).unwrap();
    let prefix = dir.join("clash");
    serialize::write_ir(&g, &w, &prefix).unwrap();
    prefix.with_extension("pb")
}

#[test]
fn run_names_files_after_the_outputs_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let pb = clashing_outputs(dir.path());
    let out = dir.path().join("out");
    let res = mmdnn()
        .args(["run", "--random-input", "-n"])
        .arg(&pb)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    // Sanitised names; a later output whose file name is taken (compared without case) gets
    // `_2`, `_3`, ….
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["a_b.npy", "a_b_2.npy", "A_B_3.npy", "outputs.json"]
            .map(String::from)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    // The "-> path" lines name the same files, in output order.
    let lines: Vec<String> = stdout_of(&res)
        .lines()
        .filter_map(|l| l.split("-> ").nth(1).map(str::to_string))
        .collect();
    let expect: Vec<String> = ["a_b.npy", "a_b_2.npy", "A_B_3.npy"]
        .iter()
        .map(|f| out.join(f).display().to_string())
        .collect();
    assert_eq!(lines, expect);
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("outputs.json")).unwrap()).unwrap();
    assert_eq!(manifest["a/b"]["file"], "a_b.npy");
    assert_eq!(manifest["a_b"]["file"], "a_b_2.npy");
    assert_eq!(manifest["A_B"]["file"], "A_B_3.npy");
    assert_eq!(manifest["a/b"]["shape"], serde_json::json!([1, 3]));
    assert_eq!(manifest["a/b"]["dtype"], "float32");
}

#[test]
fn conversions_end_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prefix = ir(d);
    let convert = |out: &str| {
        let mut c = mmdnn();
        c.args(["convert", "-sf", "keras", "-iw"])
            .arg(keras_fixture("k2_conv/model.h5"))
            .args(["-df", "onnx", "-om"])
            .arg(d.join(out));
        c
    };
    let out = convert("a.onnx").assert().success();
    let err = stderr_of(&out);
    for want in [
        "inputs:",
        "image  float32[batch, 7, 7, 3]",
        "outputs:",
        "ops:",
        "Conv 2",
        "parameters: 184",
        "layout: channels_first inside",
        "a.onnx",
        "elapsed:",
    ] {
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
    assert!(stdout_of(&out).is_empty(), "{}", stdout_of(&out));
    // --quiet: nothing at all.
    let out = convert("b.onnx").arg("--quiet").assert().success();
    assert!(stderr_of(&out).is_empty() && stdout_of(&out).is_empty());
    // --json: the summary as JSON on stdout.
    let out = convert("c.onnx").arg("--json").assert().success();
    let doc: Json = serde_json::from_str(&stdout_of(&out)).expect("JSON on stdout");
    assert_eq!(doc["ok"], Json::Bool(true));
    assert_eq!(doc["command"], "convert");
    assert_eq!(doc["inputs"][0]["name"], "image");
    assert_eq!(doc["parameters"], 184);
    assert_eq!(doc["ops"]["Conv"], 2);
    assert!(doc["elapsed_seconds"].as_f64().is_some(), "{doc}");
    assert!(doc["files"].to_string().contains("c.onnx"), "{doc}");
    // toir, tocode and tomodel end the same way.
    let (pb, npz) = (prefix.with_extension("pb"), prefix.with_extension("npz"));
    let steps: Vec<Vec<std::ffi::OsString>> = vec![
        vec![
            "toir".into(),
            "-f".into(),
            "mmdnn".into(),
            "-n".into(),
            pb.clone().into(),
            "-o".into(),
            d.join("again").into(),
        ],
        vec![
            "tocode".into(),
            "-f".into(),
            "pytorch".into(),
            "-n".into(),
            pb.clone().into(),
            "-w".into(),
            npz.clone().into(),
            "-d".into(),
            d.join("m.py").into(),
            "-dw".into(),
            d.join("w.pth").into(),
        ],
        vec![
            "tomodel".into(),
            "-f".into(),
            "pytorch".into(),
            "-n".into(),
            d.join("m.py").into(),
            "-w".into(),
            d.join("w.pth").into(),
            "-o".into(),
            d.join("m.pth").into(),
        ],
    ];
    for args in steps {
        let out = mmdnn().args(&args).arg("--json").assert().success();
        let doc: Json = serde_json::from_str(&stdout_of(&out))
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout_of(&out)));
        assert_eq!(doc["command"], args[0].to_str().unwrap());
        assert!(!doc["files"].as_array().unwrap().is_empty(), "{doc}");
        let out = mmdnn().args(&args).assert().success();
        assert!(stderr_of(&out).contains("elapsed:"), "{args:?}");
    }
}

#[test]
fn exit_codes_say_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("m.onnx");
    onnx_with_unsupported_ops(&model);
    // A failed conversion: 1, said on stderr and in --json.
    let out = mmdnn()
        .args(["convert", "-sf", "onnx", "-iw"])
        .arg(&model)
        .args(["-df", "onnx", "-om"])
        .arg(d.join("out.onnx"))
        .arg("--json")
        .assert()
        .code(1);
    assert!(
        stderr_of(&out).contains("conversion failed"),
        "{}",
        stderr_of(&out)
    );
    let doc: Json = serde_json::from_str(&stdout_of(&out)).expect("JSON on stdout");
    assert_eq!(doc["ok"], Json::Bool(false));
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["failure"], "conversion failed");
    assert!(doc["error"].to_string().contains("FooOp"), "{doc}");
    // A usage error: 2, also in --json.
    let out = mmdnn()
        .args(["convert", "-sf", "onnx", "-iw"])
        .arg(&model)
        .args(["-df", "pytorch", "-om"])
        .arg(d.join("out.onnx"))
        .arg("--json")
        .assert()
        .code(2);
    let doc: Json = serde_json::from_str(&stdout_of(&out)).expect("JSON on stdout");
    assert_eq!(doc["exit_code"], 2);
    assert_eq!(doc["failure"], "usage");
    // Verification out of tolerance: 1, said so.
    let prefix = ir(d);
    let bad = corrupted_copy(&prefix);
    let out = mmdnn()
        .args(["verify", "--random-input", "--reference"])
        .arg(prefix.with_extension("pb"))
        .arg("--candidate")
        .arg(bad.with_extension("pb"))
        .arg("--json")
        .assert()
        .code(1);
    let doc: Json = serde_json::from_str(&stdout_of(&out)).expect("JSON on stdout");
    assert_eq!(doc["ok"], Json::Bool(false));
    assert_eq!(doc["failure"], "verification out of tolerance");
    assert!(
        stderr_of(&out).contains("verification out of tolerance"),
        "{}",
        stderr_of(&out)
    );
}

/// A copy of the IR at `prefix` with one weight value changed: `<dir>/bad.pb`, `bad.npz`.
fn corrupted_copy(prefix: &Path) -> PathBuf {
    use mmdnn::weights::{NpzReader, NpzWriter, Tensor, WeightReader};
    let bad = prefix.with_file_name("bad");
    std::fs::copy(prefix.with_extension("pb"), bad.with_extension("pb")).unwrap();
    let good = NpzReader::open(&prefix.with_extension("npz")).unwrap();
    let mut w = NpzWriter::create(&bad.with_extension("npz")).unwrap();
    for (node, param) in good.keys() {
        let mut t = good.read(&node, &param).unwrap();
        if node == "conv2d_1" && param == "weights" {
            let mut v = t.to_f32();
            v[7] += 0.5;
            t = Tensor::from_f32(t.info.shape.clone(), &v).unwrap();
        }
        w.add(&node, &param, &t).unwrap();
    }
    w.finish().unwrap();
    bad
}

/// Runs `args` with stdout a pipe closed after reading at most one line.
fn closed_pipe(args: &[std::ffi::OsString]) -> std::process::Output {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mmdnn"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut first = String::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let _ = reader.read_line(&mut first);
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prefix = ir(d);
    let pb: std::ffi::OsString = prefix.with_extension("pb").into();
    let h5: std::ffi::OsString = keras_fixture("k2_conv/model.h5").into();
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["ops".into()],
        vec!["ops".into(), "--markdown".into()],
        vec!["inspect".into(), pb.clone()],
        vec!["inspect".into(), h5.clone(), "--json".into()],
        vec![
            "run".into(),
            "-n".into(),
            pb.clone(),
            "--random-input".into(),
            "-o".into(),
            d.join("out").into(),
        ],
        vec![
            "verify".into(),
            "--random-input".into(),
            "--reference".into(),
            pb.clone(),
            "--candidate".into(),
            pb.clone(),
            "--per-layer".into(),
        ],
        vec![
            "convert".into(),
            "-sf".into(),
            "keras".into(),
            "-iw".into(),
            h5,
            "-df".into(),
            "onnx".into(),
            "-om".into(),
            d.join("m.onnx").into(),
            "--json".into(),
        ],
        vec!["--help".into()],
    ];
    for args in cases {
        let out = closed_pipe(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // Ended by SIGPIPE, as any Unix filter, or finished before the pipe closed.
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}
