//! `mmdnn verify` on IR pairs (no Python): argument handling and exit codes, runs at several
//! input sizes, an interface whose layout changed, and per-layer reports of a corrupted weight.
//! Tolerance: the defaults, |Δ| ≤ 1e-4·max(1, |ref|).
use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

fn mmdnn() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("mmdnn"))
}

/// The tiny Keras-made IR of examples/mmdnn-ir: input_1 [?, 8, 8, 3] → Conv, Relu, MaxPool,
/// Flatten, Dense, Softmax. Returns its prefix.
fn tiny(dir: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mmdnn-ir");
    let prefix = dir.join("tiny");
    mmdnn()
        .args(["toir", "-f", "mmdnn", "-q", "-n"])
        .arg(example.join("keras_tiny.pb"))
        .arg("-w")
        .arg(example.join("keras_tiny.npy"))
        .arg("-o")
        .arg(&prefix)
        .assert()
        .success();
    prefix
}

/// A copy of the IR at `prefix` as `<dir>/<name>` with one weight of conv2d_1 changed by 0.5.
fn corrupted(prefix: &Path, name: &str) -> PathBuf {
    use mmdnn::weights::{NpzReader, NpzWriter, Tensor, WeightReader};
    let bad = prefix.with_file_name(name);
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

/// `mmdnn layout --to channels_first` of `prefix` (its interface becomes [?, 3, 8, 8]).
fn channels_first(prefix: &Path, name: &str) -> PathBuf {
    let out = prefix.with_file_name(name);
    mmdnn()
        .args(["layout", "--to", "channels_first", "-n"])
        .arg(prefix.with_extension("pb"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    out
}

fn verify(reference: &Path, candidate: &Path) -> Command {
    let mut c = mmdnn();
    c.args(["verify", "--random-input", "--seed", "1", "--reference"])
        .arg(reference.with_extension("pb"))
        .arg("--candidate")
        .arg(candidate.with_extension("pb"));
    c
}

fn json_of(out: &assert_cmd::assert::Assert) -> Json {
    serde_json::from_slice(&out.get_output().stdout).expect("JSON on stdout")
}

#[test]
fn bad_arguments_are_usage_errors_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let ir = tiny(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (&["--sizes", "input_1=2x0x8x3"], "'0' in 'input_1=2x0x8x3' is not a positive integer"),
        (&["--sizes", "input_1"], "is not NAME=SIZE or INPUT=D0xD1x…"),
        (&["--sizes", "batch=3"], "--sizes names 'batch', which is neither an input (input_1) nor a named dynamic dim (the model names none)"),
        (&["--sizes", "input_1=2x8x8x4"], "--sizes input_1=2x8x8x4: the input's declared shape is [?, 8, 8, 3]"),
        (&["--sizes", "input_1=2x8x8x3", "--input", "input_1=x.npy"], "pass one or the other"),
        (&["--input", "image=x.npy"], "--input names 'image', which is not an input of the reference (inputs: input_1)"),
    ];
    for (args, message) in cases {
        let npy = dir.path().join("x.npy");
        std::fs::write(&npy, b"").unwrap();
        let mut c = verify(&ir, &ir);
        c.current_dir(dir.path()).args(*args);
        if args.contains(&"--input") {
            // Inputs given: no random ones.
            c = mmdnn();
            c.current_dir(dir.path())
                .args(["verify", "--reference"])
                .arg(ir.with_extension("pb"))
                .arg("--candidate")
                .arg(ir.with_extension("pb"))
                .args(*args);
        }
        c.assert()
            .code(2)
            .stderr(predicate::str::contains(*message));
    }
    // No input values at all, and a reference that does not exist.
    mmdnn()
        .args(["verify", "--reference"])
        .arg(ir.with_extension("pb"))
        .arg("--candidate")
        .arg(ir.with_extension("pb"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "input 'input_1' has no value: pass --input input_1=FILE.npy or --random-input",
        ));
    mmdnn()
        .args(["verify", "--random-input", "--reference"])
        .arg(dir.path().join("absent.pb"))
        .arg("--candidate")
        .arg(ir.with_extension("pb"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "absent.pb: no such file or directory",
        ));
}

#[test]
fn a_dynamic_batch_runs_at_two_sizes_automatic_or_given() {
    let dir = tempfile::tempdir().unwrap();
    let ir = tiny(dir.path());
    verify(&ir, &ir).assert().success().stdout(
        predicate::str::contains("run 1 of 2: input_1=1x8x8x3")
            .and(predicate::str::contains("run 2 of 2: input_1=2x8x8x3")),
    );
    let out = verify(&ir, &ir)
        .args([
            "--sizes",
            "input_1=3x8x8x3",
            "--sizes",
            "input_1=5x8x8x3",
            "--json",
        ])
        .assert()
        .success();
    let doc = json_of(&out);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{doc}");
    assert_eq!(runs[0]["sizes"]["input_1"], serde_json::json!([3, 8, 8, 3]));
    assert_eq!(runs[1]["sizes"]["input_1"], serde_json::json!([5, 8, 8, 3]));
    for run in runs {
        assert_eq!(
            run["outputs"][0]["within_tolerance"],
            Json::Bool(true),
            "{doc}"
        );
    }
    // --unknown-dim pins the dynamic dims: one run.
    verify(&ir, &ir)
        .args(["--unknown-dim", "4"])
        .assert()
        .success()
        .stdout(predicate::str::contains("run 1 of 1: input_1=4x8x8x3"));
}

#[test]
fn a_layout_changed_interface_is_fed_permuted_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let ir = tiny(dir.path());
    let cf = channels_first(&ir, "cf");
    verify(&ir, &cf).arg("--per-layer").assert().success().stdout(
        predicate::str::contains(
            "input input_1: the candidate takes it permuted by [0, 3, 1, 2] (declared [?, 8, 8, 3] → [?, 3, 8, 8])",
        )
        .and(predicate::str::contains("first divergent layer: none"))
        .and(predicate::str::contains("OUT OF TOLERANCE").not()),
    );
    // The same change with a corrupted weight: found, and named.
    let bad = channels_first(&corrupted(&ir, "bad"), "bad_cf");
    verify(&ir, &bad)
        .arg("--per-layer")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "first divergent layer: conv2d_1\n",
        ));
}

#[test]
fn per_layer_lists_every_layer_when_the_outputs_are_out_of_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let ir = tiny(dir.path());
    let bad = corrupted(&ir, "bad");
    let out = verify(&ir, &bad)
        .args(["--per-layer", "--json", "--sizes", "input_1=2x8x8x3"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "verification out of tolerance: dense_1_activation at input_1=2x8x8x3",
        ));
    let doc = json_of(&out);
    assert_eq!(doc["failure"], "verification out of tolerance");
    let run = &doc["runs"][0];
    assert_eq!(run["first_divergent_layer"], "conv2d_1", "{doc}");
    let layers: Vec<(&str, bool)> = run["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap(),
                l["within_tolerance"] == Json::Bool(true),
            )
        })
        .collect();
    // Every node after the input, in order; the corrupted convolution diverges.
    let names: Vec<&str> = layers.iter().map(|l| l.0).collect();
    assert_eq!(
        names,
        [
            "conv2d_1",
            "conv2d_1_activation",
            "max_pooling2d_1",
            "flatten_1",
            "dense_1",
            "dense_1_activation"
        ]
    );
    assert!(!layers[0].1, "{doc}");
}
