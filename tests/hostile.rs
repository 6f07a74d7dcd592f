//! The hostile-input suite (issue 15): for each class of crafted input, the command refuses it
//! cleanly — exit 1, a message naming the file and what is wrong, nothing written, no temporary
//! left — or writes a valid output. Inputs are built here, small, from the fixtures.
//!
//! Classes and where they are tested:
//! 1. data from outside the model (HDF5 external storage and links): `external_hdf5_*` here;
//!    also tests/keras_frontend.rs and tests/e2e/test_keras_hostile.py (HDF5's own reader agrees);
//! 2. sizes that wrap: `sizes_that_wrap_*`;
//! 3. mutated `.h5` files: `mutated_h5_files_*` (the fuzz targets go further: scripts/fuzz);
//! 4. allocations without a budget: `allocations_past_the_budget_*`, tests/hostile_run.rs;
//! 5. panics: `former_panics_*`;
//! 6. pickle nesting: `deeply_nested_pickles_*`;
//! 7. zip bombs and duplicate entries: tests/outputs_hostile.rs;
//! 8. files left behind (signals, kills, concurrent writers): tests/outputs_kill.rs;
//! 9. accepted but broken: `accepted_but_broken_*`, tests/validate.rs;
//! 10. minor: `toir_output_is_reproducible`, `tomodel_help_says_code_is_run` here; output onto
//!     a device: tests/outputs_hostile.rs.
use mmdnn::proto::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn mmdnn(args: &[&str], paths: &[&Path], tail: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmdnn"))
        .args(args)
        .args(paths)
        .args(tail)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file in `dir`, hidden ones (temporaries) included.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `convert` of `model` (read by frontend `sf`, given as `flag`) to ONNX in a fresh directory.
/// Returns the output and the directory's files afterwards.
fn convert(sf: &str, flag: &str, model: &Path, extra: &[&str]) -> (Output, Vec<String>) {
    let out_dir = tempfile::tempdir().unwrap();
    let om = out_dir.path().join("model.onnx");
    let out = mmdnn(
        &["convert", "-sf", sf, flag],
        &[model],
        &[&["-df", "onnx", "-om", om.to_str().unwrap()], extra].concat(),
    );
    (out, files_in(out_dir.path()))
}

/// Asserts a clean refusal: exit 1, every `needles` in the message, nothing written.
fn refused(sf: &str, flag: &str, model: &Path, needles: &[&str]) {
    let (out, written) = convert(sf, flag, model, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", model.display());
    for n in needles {
        assert!(err.contains(n), "{}: no {n:?} in: {err}", model.display());
    }
    assert!(written.is_empty(), "{}: left {written:?}", model.display());
}

// ---- ONNX models built in memory ----

fn dims(shape: &[i64]) -> TypeProto {
    use tensor_shape_proto::{dimension::Value, Dimension};
    let dim = shape
        .iter()
        .map(|&d| Dimension {
            value: Some(Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: DataType::Float as i32,
            shape: Some(TensorShapeProto { dim }),
        })),
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

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn i64_tensor(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Int64 as i32,
        dims: vec![v.len() as i64],
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn f32_tensor(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Float as i32,
        dims: dims.to_vec(),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

/// A model of `nodes` over input `x` of `shape`, its output the last node's.
fn onnx(
    dir: &Path,
    name: &str,
    shape: &[i64],
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
) -> PathBuf {
    let value = |n: &str, t: Option<TypeProto>| ValueInfoProto {
        name: n.into(),
        r#type: t,
        ..Default::default()
    };
    let last = nodes
        .last()
        .map_or("x".to_string(), |n| n.output[0].clone());
    let m = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: inits,
            input: vec![value("x", Some(dims(shape)))],
            output: vec![value(&last, None)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join(name);
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    path
}

/// A small valid model (x + w, then Relu), converted to IR files `ir.pb` + `ir.npz` in `dir`.
fn small_ir(dir: &Path) -> PathBuf {
    let model = onnx(
        dir,
        "small.onnx",
        &[1, 4],
        vec![
            node("Add", &["x", "w"], "s", vec![]),
            node("Relu", &["s"], "y", vec![]),
        ],
        vec![f32_tensor("w", &[4], &[1.0, -2.0, 3.0, -4.0])],
    );
    let prefix = dir.join("ir");
    let out = mmdnn(
        &["toir", "-f", "onnx", "-n"],
        &[&model],
        &["-o", prefix.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    prefix.with_extension("pb")
}

/// An `.npy` v1.0 file: `header` padded to a 64-byte boundary, then `data`.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

/// A stored (uncompressed) zip of `entries`.
fn zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

// ---- 1. data from outside the model ----

/// HDF5 datasets stored in another file (external storage, external links, an externally
/// linked group), run where the external names resolve: refused, naming what and where.
#[test]
fn external_hdf5_data_is_refused() {
    for file in [
        "external_storage.h5",
        "external_link.h5",
        "external_group.h5",
    ] {
        let model = fixture(&format!("keras/hostile/{file}"));
        refused("keras", "-iw", &model, &[file, "external"]);
    }
}

// ---- 2. sizes that wrap ----

/// Dims whose element count wrapped to 0 (matching no data) are refused, in an ONNX
/// initializer and in an `.npz` header.
#[test]
fn sizes_that_wrap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for d in [1i64 << 32, 1 << 40] {
        let model = onnx(
            dir.path(),
            "wrap.onnx",
            &[1],
            vec![node("Add", &["x", "w"], "y", vec![])],
            vec![f32_tensor("w", &[d, d], &[])],
        );
        refused(
            "onnx",
            "-iw",
            &model,
            &["wrap.onnx", "'w'", "more bytes than memory"],
        );
    }
    let pb = small_ir(dir.path());
    let huge = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
        &[],
    );
    let npz = dir.path().join("wrap.npz");
    zip(&npz, &[("w.value.npy", &huge)]);
    let (out, written) = convert("mmdnn", "-in", &pb, &["-iw", npz.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("wrap.npz"), "{err}");
    assert!(written.is_empty(), "{written:?}");
}

// ---- 3. mutated .h5 files ----

/// 300 fixed-seed mutations and 40 truncations of a Keras 2 `.h5`: each converts or is refused
/// with exit 1 (no crash, no hang, no abort), and a refusal writes nothing.
#[test]
fn mutated_h5_files_are_refused_or_converted() {
    let original = std::fs::read(fixture("keras/k2_conv/model.h5")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cases: Vec<Vec<u8>> = vec![];
    for _ in 0..300 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = match next() % 3 {
                0 => bytes[at] ^ (1 << (next() % 8)),
                1 => 0xff,
                _ => next() as u8,
            };
        }
        cases.push(bytes);
    }
    for k in 1..=40 {
        cases.push(original[..original.len() * k / 41].to_vec());
    }
    let (mut converted, mut refused) = (0, 0);
    for (i, bytes) in cases.iter().enumerate() {
        let model = dir.path().join("m.h5");
        std::fs::write(&model, bytes).unwrap();
        let (out, written) = convert("keras", "-iw", &model, &[]);
        match out.status.code() {
            Some(0) => converted += 1,
            Some(1) => {
                refused += 1;
                assert!(written.is_empty(), "case {i}: left {written:?}");
                assert!(stderr(&out).contains("m.h5"), "case {i}: {}", stderr(&out));
            }
            other => panic!("case {i}: exit {other:?}: {}", stderr(&out)),
        }
    }
    assert!(refused > 40, "{refused} refused, {converted} converted");
}

// ---- 4. allocations past the budget ----

/// Constants that would take 16 GiB (ConstantOfShape [65536, 65536]) and 4 TB (Range to 1e12)
/// are not made while converting: the conversion fails cleanly or keeps them as ops to run.
#[test]
fn allocations_past_the_budget_do_not_abort() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "zeros.onnx",
            vec![
                node("ConstantOfShape", &["shape"], "z", vec![]),
                node("Add", &["x", "z"], "y", vec![]),
            ],
            vec![i64_tensor("shape", &[65536, 65536])],
        ),
        (
            "range.onnx",
            vec![
                node("Range", &["start", "limit", "delta"], "r", vec![]),
                node(
                    "Cast",
                    &["r"],
                    "rf",
                    vec![AttributeProto {
                        name: "to".into(),
                        r#type: AttributeType::Int as i32,
                        i: DataType::Float as i64,
                        ..Default::default()
                    }],
                ),
                node("Add", &["x", "rf"], "y", vec![]),
            ],
            vec![
                scalar("start", 0),
                scalar("limit", 1_000_000_000_000),
                scalar("delta", 1),
            ],
        ),
    ];
    for (name, nodes, inits) in cases {
        let model = onnx(dir.path(), name, &[1], nodes, inits);
        let (out, written) = convert("onnx", "-iw", &model, &[]);
        match out.status.code() {
            Some(0) => assert_eq!(written, ["model.onnx"], "{name}"),
            Some(1) => assert!(written.is_empty(), "{name}: left {written:?}"),
            other => panic!("{name}: exit {other:?}: {}", stderr(&out)),
        }
    }
}

fn scalar(name: &str, v: i64) -> TensorProto {
    TensorProto {
        dims: vec![],
        ..i64_tensor(name, &[v])
    }
}

// ---- 5. former panics ----

/// Inputs that used to panic (exit 101): a Conv with strides 0, an Expand to [2^31, 2^31, 4],
/// an `.npz` whose central directory claims sizes past the end of the file, a Keras input layer
/// with `batch_input_shape: []`.
#[test]
fn former_panics_are_clean_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = f32_tensor("k", &[1, 1, 1, 1], &[1.0]);
    let conv = onnx(
        dir.path(),
        "stride0.onnx",
        &[1, 1, 4, 4],
        vec![node(
            "Conv",
            &["x", "k"],
            "y",
            vec![ints("strides", &[0, 0])],
        )],
        vec![kernel],
    );
    refused(
        "onnx",
        "-iw",
        &conv,
        &["stride0.onnx", "Conv", "strides [0, 0]"],
    );
    let expand = onnx(
        dir.path(),
        "expand.onnx",
        &[1],
        vec![node("Expand", &["x", "shape"], "y", vec![])],
        vec![i64_tensor("shape", &[1 << 31, 1 << 31, 4])],
    );
    refused(
        "onnx",
        "-iw",
        &expand,
        &["expand.onnx", "(Expand)", "more elements than memory"],
    );

    let pb = small_ir(dir.path());
    let good = std::fs::read(dir.path().join("ir.npz")).unwrap();
    // The central directory entry's compressed and uncompressed sizes (offsets 20 and 24 of
    // its header) set past the end of the file.
    let cd = good
        .windows(4)
        .rposition(|w| w == b"PK\x01\x02")
        .expect("a central directory entry");
    let mut bad = good.clone();
    bad[cd + 20..cd + 28].copy_from_slice(&[0xf0, 0xff, 0xff, 0x7f, 0xf0, 0xff, 0xff, 0x7f]);
    let npz = dir.path().join("past_end.npz");
    std::fs::write(&npz, bad).unwrap();
    let (out, written) = convert("mmdnn", "-in", &pb, &["-iw", npz.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("past_end.npz"), "{}", stderr(&out));
    assert!(written.is_empty(), "{written:?}");

    let keras = dir.path().join("empty_shape.json");
    let config = serde_json::json!({
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [{
                "class_name": "InputLayer", "name": "x", "inbound_nodes": [],
                "config": {"name": "x", "batch_input_shape": [], "dtype": "float32"},
            }],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["x", 0, 0]],
        },
    });
    std::fs::write(&keras, config.to_string()).unwrap();
    refused(
        "keras",
        "-in",
        &keras,
        &["empty_shape.json", "empty batch_input_shape"],
    );
}

// ---- 6. pickle nesting ----

/// MMdnn's legacy pickled `.npy` with tuples nested 200,000 deep (a 200 KB file): refused for
/// what it is, not by a stack overflow (SIGSEGV) while building or dropping it.
#[test]
fn deeply_nested_pickles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pb = small_ir(dir.path());
    let mut pickle = b"\x80\x02)".to_vec(); // PROTO 2, EMPTY_TUPLE
    pickle.extend(std::iter::repeat_n(0x85u8, 200_000)); // TUPLE1
    pickle.push(b'.'); // STOP
    let path = dir.path().join("nested.npy");
    std::fs::write(
        &path,
        npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (), }",
            &pickle,
        ),
    )
    .unwrap();
    let (out, written) = convert("mmdnn", "-in", &pb, &["-iw", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nested.npy"), "{err}");
    assert!(written.is_empty(), "{written:?}");
}

// ---- 9. accepted but broken ----

/// Graphs that used to convert (exit 0) into models their framework rejects: two nodes writing
/// one value, a dilation of 2^30 (an output of size 0), negative pads, Gather indices out of
/// range, a Conv bias of the wrong shape.
#[test]
fn accepted_but_broken_graphs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = || f32_tensor("k", &[1, 1, 1, 1], &[1.0]);
    let k3 = f32_tensor("k", &[1, 1, 3, 3], &[1.0; 9]);
    let cases: Vec<(&str, Vec<NodeProto>, Vec<TensorProto>, &str)> = vec![
        (
            "non_ssa.onnx",
            vec![
                node("Relu", &["x"], "y", vec![]),
                node("Neg", &["x"], "y", vec![]),
            ],
            vec![],
            "value 'y' is written by node 'y' (Relu) and by node 'y' (Neg)",
        ),
        (
            "dilation.onnx",
            vec![node(
                "Conv",
                &["x", "k"],
                "y",
                vec![ints("dilations", &[1 << 30, 1])],
            )],
            vec![k3],
            "the window",
        ),
        (
            "negative_pads.onnx",
            vec![node(
                "Conv",
                &["x", "k"],
                "y",
                vec![ints("pads", &[-1, 0, 0, 0])],
            )],
            vec![k()],
            "pads [-1, 0, 0, 0]",
        ),
        (
            "gather.onnx",
            vec![node("Gather", &["x", "i"], "y", vec![])],
            vec![i64_tensor("i", &[0, 5])],
            "constant indices 'i' hold 5",
        ),
        (
            "bias.onnx",
            vec![node("Conv", &["x", "k", "b"], "y", vec![])],
            vec![k(), f32_tensor("b", &[1, 1, 1], &[0.5])],
            "weight 'bias' has shape [1, 1, 1]; the op expects [1]",
        ),
    ];
    for (name, nodes, inits, needle) in cases {
        let model = onnx(dir.path(), name, &[1, 1, 4, 4], nodes, inits);
        refused("onnx", "-iw", &model, &[name, needle]);
    }
}

// ---- 10. minor ----

/// The same model converted twice gives the same IR bytes (attributes used to come out in hash
/// order, different on every run).
#[test]
fn toir_output_is_reproducible() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keras/small_cnn.keras");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let files: Vec<Vec<Vec<u8>>> = dirs
        .iter()
        .map(|d| {
            let prefix = d.path().join("ir");
            let out = mmdnn(
                &["toir", "-f", "keras", "-iw"],
                &[&model],
                &["-o", prefix.to_str().unwrap()],
            );
            assert!(out.status.success(), "{}", stderr(&out));
            ["pb", "json", "npz"]
                .iter()
                .map(|ext| std::fs::read(prefix.with_extension(ext)).unwrap())
                .collect()
        })
        .collect();
    for (ext, (a, b)) in ["pb", "json", "npz"]
        .iter()
        .zip(files[0].iter().zip(&files[1]))
    {
        assert!(a == b, ".{ext} differs between two runs");
    }
    // Several attributes per node, so an unordered map would show.
    let json = String::from_utf8(files[0][1].clone()).unwrap();
    assert!(json.matches("\"kernel_shape\"").count() > 0, "{json}");
}

#[test]
fn tomodel_help_says_code_is_run() {
    let out = mmdnn(&["tomodel", "--help"], &[], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("is run with Python") && help.contains("it is a program"),
        "{help}"
    );
}
