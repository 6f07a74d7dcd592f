//! The Keras frontend on small files written by Keras (tests/fixtures/keras, made by
//! make_keras_fixtures.py): Keras 2 `.h5`, the `-n model.json -w weights.h5` pair, Keras 3
//! `.keras` and `.h5`; each converted graph is run by the interpreter and compared with Keras's
//! outputs. Also: the layout conventions of the converted graph, the errors for weights-only
//! files and unconvertible layers, the HDF5 storage layouts the reader decodes, and hostile files
//! whose data lies outside the file (made by make_hdf5_fixtures.py), which are refused.
use mmdnn::frontends::{self, Loaded, SourceArgs};
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::ops::Attrs;
use mmdnn::weights::npy;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(rel)
}

fn load(network: &str, weights: Option<&str>) -> anyhow::Result<Loaded> {
    frontends::load(
        "keras",
        &SourceArgs {
            network: Some(fixture(network)),
            weights: weights.map(fixture),
            ..Default::default()
        },
    )
}

/// Runs the model on `dir/in<i>.npy` and checks every output against `dir/ref<j>.npy`.
fn check_against_keras(loaded: &Loaded, dir: &str) {
    let feeds: Vec<(String, Value)> = loaded
        .graph
        .inputs
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let t = npy::read_file(&fixture(&format!("{dir}/in{i}.npy"))).unwrap();
            (name.clone(), Value::from_tensor(&t).unwrap())
        })
        .collect();
    let outs = Interpreter::new(&loaded.graph, loaded.weights.as_ref())
        .run(&feeds)
        .unwrap();
    assert!(!outs.is_empty());
    for (j, got) in outs.iter().enumerate() {
        let want =
            Value::from_tensor(&npy::read_file(&fixture(&format!("{dir}/ref{j}.npy"))).unwrap())
                .unwrap();
        assert_eq!(got.shape(), want.shape(), "{dir}: output {j}");
        for (g, w) in got.to_f32().iter().zip(want.to_f32().iter()) {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{dir}: output {j}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn keras2_full_model_h5() {
    let loaded = load("k2_conv/model.h5", None).unwrap();
    check_against_keras(&loaded, "k2_conv");
    assert!(loaded.graph.producer.starts_with("keras 2."));
}

#[test]
fn keras2_h5_with_fixed_length_string_attributes() {
    let loaded = load("k2_conv/model_fixed_strings.h5", None).unwrap();
    check_against_keras(&loaded, "k2_conv");
}

#[test]
fn keras2_json_and_weights_pair() {
    let loaded = load("k2_rnn/model.json", Some("k2_rnn/weights.h5")).unwrap();
    check_against_keras(&loaded, "k2_rnn");
    // Bidirectional LSTM weights in the IR layout: W [2, 4H, F], B [2, 8H].
    let w = loaded.weights.info("bilstm", "W").unwrap();
    assert_eq!(w.shape, vec![2, 12, 4]);
    assert_eq!(
        loaded.weights.info("bilstm", "B").unwrap().shape,
        vec![2, 24]
    );
}

/// New-style groups, a user block, gzip+shuffle chunks, big-endian data and a soft link read as
/// the plain file does.
#[test]
fn hdf5_storage_layouts_read_like_the_plain_file() {
    let loaded = load("k2_conv/model_layouts.h5", None).unwrap();
    check_against_keras(&loaded, "k2_conv");
}

/// The hostile files of tests/fixtures/keras/hostile, what each error must name, and the
/// "secret" float32 values they point at.
const HOSTILE: [(&str, &[&str]); 3] = [
    (
        "external_storage.h5",
        &[
            "dataset '/model_weights/probs/probs/kernel:0'",
            "external file(s) 'secret.bin'",
        ],
    ),
    (
        "external_link.h5",
        &[
            "dataset '/model_weights/probs/probs/kernel:0'",
            "external link to file 'secret.h5'",
        ],
    ),
    (
        "external_group.h5",
        &[
            "group '/model_weights/conv'",
            "external link to file 'secret.h5'",
        ],
    ),
];

#[test]
fn data_outside_the_file_is_refused_by_name() {
    for (file, names) in HOSTILE {
        let err = format!(
            "{:#}",
            load(&format!("hostile/{file}"), None).err().unwrap()
        );
        assert!(err.contains(file), "{err}");
        for name in names {
            assert!(err.contains(name), "{file}: no {name:?} in: {err}");
        }
    }
}

/// A weight group linked into itself (a cycle of hard links) is refused by name, not walked
/// until the stack overflows (found by the keras_zip fuzz target).
#[test]
fn a_weight_group_linked_into_itself_is_refused() {
    let err = format!(
        "{:#}",
        load("hostile/cyclic_group.keras", None).err().unwrap()
    );
    assert!(err.contains("cyclic_group.keras"), "{err}");
    assert!(err.contains("nested deeper than"), "{err}");
    assert!(err.contains("layers/separable_conv2d/loop/loop"), "{err}");
}

/// `convert` on a hostile file, run where its relative external names resolve (HDF5 itself would
/// read secret.bin and secret.h5 there): exit 1 and nothing written, while the same command on
/// the plain model writes its output.
#[test]
fn converting_a_hostile_file_fails_and_writes_nothing() {
    let convert = |model: &Path, out: &Path| {
        assert_cmd::Command::new(assert_cmd::cargo::cargo_bin("mmdnn"))
            .current_dir(fixture("hostile"))
            .args(["convert", "-sf", "keras", "-iw"])
            .arg(model)
            .args(["-df", "onnx", "-om"])
            .arg(out)
            .assert()
    };
    let dir = tempfile::tempdir().unwrap();
    convert(&fixture("k2_conv/model.h5"), &dir.path().join("plain.onnx")).success();
    assert!(dir.path().join("plain.onnx").is_file());
    let secret = std::fs::read(fixture("hostile/secret.bin")).unwrap();
    for (file, _) in HOSTILE {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.onnx");
        let assert = convert(&fixture(&format!("hostile/{file}")), &out).code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(stderr.contains("external"), "{file}: {stderr}");
        let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(written.is_empty(), "{file}: wrote {written:?}");
        // Nor did the secret reach stdout or stderr.
        let output = assert.get_output();
        for stream in [&output.stdout, &output.stderr] {
            assert!(!stream.windows(secret.len()).any(|w| w == secret));
        }
    }
}

#[test]
fn keras3_keras_and_h5() {
    for file in ["k3_mixed/model.keras", "k3_mixed/model.h5"] {
        let loaded = load(file, None).unwrap();
        check_against_keras(&loaded, "k3_mixed");
    }
}

#[test]
fn layout_sensitive_ops_carry_data_format_and_explicit_pads() {
    let loaded = load("k2_conv/model.h5", None).unwrap();
    let g = &loaded.graph;
    let conv = g.node("conv").unwrap();
    let a = Attrs::of(conv).unwrap();
    assert_eq!(a.str("data_format").unwrap(), "channels_last");
    // 7×7 input, kernel 3, stride 2, "same": out 4, total pad 2 → [1, 1, 1, 1].
    assert_eq!(a.ints("pads").unwrap(), vec![1, 1, 1, 1]);
    for n in &g.nodes {
        let def = mmdnn::ir::ops::lookup(n).unwrap();
        if matches!(def.layout, mmdnn::ir::ops::Layout::DataFormat { .. }) {
            assert_eq!(
                Attrs::of(n).unwrap().str("data_format").unwrap(),
                "channels_last",
                "{}",
                n.name
            );
        }
    }
}

#[test]
fn weights_only_file_is_refused_with_what_to_pass() {
    let err = format!("{:#}", load("k2_rnn/weights.h5", None).err().unwrap());
    assert!(
        err.contains("only weights") && err.contains("-n model.json"),
        "{err}"
    );
}

#[test]
fn unconvertible_layers_are_listed_together() {
    let err = format!("{:#}", load("k3_lambda/model.keras", None).err().unwrap());
    assert!(err.contains("2 layer(s)"), "{err}");
    assert!(
        err.contains("'python_lambda' (Lambda: Python code)"),
        "{err}"
    );
    assert!(err.contains("'my_doubler' (Doubler)"), "{err}");
}

/// A functional model whose two branches each fail (a softmax over two axes, which the layer
/// check before conversion does not catch) and meet in an Add: both failures are listed in one error, and the Add that reads them is not
/// reported a second time.
/// The error of loading `model` (a Keras JSON config) with `input_shapes`; fails if it loads.
fn refusal(model: &serde_json::Value, input_shapes: Vec<Vec<i64>>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, model.to_string()).unwrap();
    let loaded = frontends::load(
        "keras",
        &SourceArgs {
            network: Some(path),
            input_shapes,
            ..Default::default()
        },
    );
    format!("{:#}", loaded.err().expect("the model is refused"))
}

fn two_failing_softmax_branches(as_layers: bool) -> String {
    let layer = |name: &str, class: &str, config: serde_json::Value, inbound: &[&str]| {
        let inbound: Vec<serde_json::Value> = inbound
            .iter()
            .map(|i| serde_json::json!([i, 0, 0, {}]))
            .collect();
        let mut config = config;
        config["name"] = name.into();
        // A layer's config has `trainable`; without it (and without a module) Keras 3 wrote an
        // operation call (keras.ops.softmax).
        if as_layers {
            config["trainable"] = true.into();
        }
        serde_json::json!({
            "class_name": class, "name": name, "config": config,
            "inbound_nodes": if inbound.is_empty() { serde_json::json!([]) } else { serde_json::json!([inbound]) },
        })
    };
    let softmax = |axes: [i64; 2]| serde_json::json!({"axis": axes});
    let model = serde_json::json!({
        "class_name": "Functional",
        "config": {
            "name": "two_bad_branches",
            "layers": [
                layer("x", "InputLayer", serde_json::json!({"batch_input_shape": [null, 3, 4, 5], "dtype": "float32"}), &[]),
                layer("left", "Softmax", softmax([1, 2]), &["x"]),
                layer("right", "Softmax", softmax([2, 3]), &["x"]),
                layer("sum", "Add", serde_json::json!({}), &["left", "right"]),
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["sum", 0, 0]],
        },
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    });
    refusal(&model, vec![])
}

#[test]
fn every_failing_layer_is_listed_at_once() {
    let err = two_failing_softmax_branches(true);
    assert!(err.contains("(2 problems)"), "{err}");
    assert!(
        err.contains("layer 'left' (Softmax): softmax over several axes [1, 2]"),
        "{err}"
    );
    assert!(
        err.contains("layer 'right' (Softmax): softmax over several axes [2, 3]"),
        "{err}"
    );
    assert!(!err.contains("'sum'"), "{err}");
}

/// The same through Keras 3 operation calls: a softmax over several axes is refused, not
/// converted as a softmax over the last axis.
#[test]
fn softmax_operation_over_several_axes_is_refused() {
    let err = two_failing_softmax_branches(false);
    assert!(err.contains("(2 problems)"), "{err}");
    assert!(
        err.contains("softmax over axes [1,2] is not supported"),
        "{err}"
    );
    assert!(
        err.contains("softmax over axes [2,3] is not supported"),
        "{err}"
    );
}

/// An input layer whose `batch_input_shape` is `[]` (an underflow computing its dims besides the
/// batch, with --inputShape) or holds a string is refused, naming the layer.
#[test]
fn malformed_input_shapes_are_refused() {
    for (shape, expect) in [
        (serde_json::json!([]), "empty batch_input_shape"),
        (
            serde_json::json!([null, "three"]),
            "dim \"three\" is not a size or null",
        ),
    ] {
        let model = serde_json::json!({
            "class_name": "Functional",
            "config": {
                "name": "m",
                "layers": [{
                    "class_name": "InputLayer", "name": "x", "inbound_nodes": [],
                    "config": {"name": "x", "batch_input_shape": shape, "dtype": "float32"},
                }],
                "input_layers": [["x", 0, 0]],
                "output_layers": [["x", 0, 0]],
            },
        });
        let err = refusal(&model, vec![vec![3]]);
        assert!(
            err.contains("input layer 'x'") && err.contains(expect),
            "{err}"
        );
    }
}

/// Two layers with one name (Keras refuses to build such a model): the second's output used to
/// replace the first's silently.
#[test]
fn two_layers_with_one_name_are_refused() {
    let dense = |inbound: &str| {
        serde_json::json!({
            "class_name": "Dense", "name": "d",
            "config": {"name": "d", "units": 2, "use_bias": false, "trainable": true},
            "inbound_nodes": [[[inbound, 0, 0, {}]]],
        })
    };
    let model = serde_json::json!({
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
                 "config": {"name": "x", "batch_input_shape": [null, 3], "dtype": "float32"}},
                dense("x"),
                dense("d"),
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
        "keras_version": "2.15.0",
    });
    let err = refusal(&model, vec![]);
    assert!(err.contains("model 'm' has two layers named 'd'"), "{err}");
}

/// A depthwise convolution with strides 0 and "same" padding is refused, naming the layer and
/// the strides, not divided by (found by the keras_h5 fuzz target).
#[test]
fn zero_strides_with_same_padding_are_refused() {
    let model = serde_json::json!({
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {
                    "class_name": "InputLayer", "name": "x", "inbound_nodes": [],
                    "config": {"name": "x", "batch_input_shape": [null, 8, 8, 3], "dtype": "float32"},
                },
                {
                    "class_name": "DepthwiseConv2D", "name": "dw",
                    "inbound_nodes": [[["x", 0, 0, {}]]],
                    "config": {
                        "name": "dw", "kernel_size": [3, 3], "strides": [0, 0],
                        "padding": "same", "depth_multiplier": 1, "use_bias": false,
                        "data_format": "channels_last", "dilation_rate": [1, 1],
                        "activation": "linear",
                    },
                },
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["dw", 0, 0]],
        },
        "keras_version": "2.15.0",
    });
    let err = refusal(&model, vec![]);
    assert!(err.contains("'dw'"), "{err}");
    assert!(err.contains("strides [0, 0]: 0 is not between 1"), "{err}");
}
