//! The command line as users and CI scripts see it: MMdnn names and flags, exit codes, and no
//! partial output on failure.
use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("mmdnn")
}

fn mmdnn() -> Command {
    Command::new(bin())
}

fn alias(dir: &Path, name: &str) -> Command {
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(bin(), &link).unwrap();
    }
    Command::new(link)
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/mmdnn-ir")
        .join(name)
}

#[test]
fn mmconvert_help_through_symlink() {
    let dir = tempfile::tempdir().unwrap();
    alias(dir.path(), "mmconvert")
        .arg("--help")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("--srcFramework")
                .and(predicate::str::contains("--outputModel")),
        );
}

#[test]
fn unknown_flag_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    alias(dir.path(), "mmconvert")
        .args(["-sf", "keras", "--bogus", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--bogus"));
}

#[test]
fn unknown_framework_is_a_usage_error() {
    mmdnn()
        .args([
            "convert", "-sf", "kears", "-df", "onnx", "-iw", "m.h5", "-om", "m.onnx",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("kears").and(predicate::str::contains("keras")));
}

#[test]
fn mmdnn_single_dash_flags_parse() {
    let dir = tempfile::tempdir().unwrap();
    // Every MMdnn spelling parses; the conversion then fails plainly (exit 1) because these
    // targets are not implemented yet — not a usage error.
    alias(dir.path(), "mmconvert")
        .args([
            "-sf",
            "keras",
            "-iw",
            "m.h5",
            "-in",
            "m.json",
            "-df",
            "cntk",
            "-om",
            "out.dnn",
            "--inputShape",
            "224,224,3",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not implemented"));
    alias(dir.path(), "mmtocode")
        .args([
            "-f", "mxnet", "-in", "g.pb", "-iw", "g.npz", "-o", "m.py", "-dw", "w.npy", "--phase",
            "test",
        ])
        .assert()
        .code(1);
    alias(dir.path(), "mmtomodel")
        .args([
            "-f",
            "caffe",
            "-in",
            "m.py",
            "-iw",
            "w.npy",
            "-om",
            "m.caffemodel",
        ])
        .assert()
        .code(1);
}

#[test]
fn target_flags_must_fit_the_target() {
    mmdnn()
        .args([
            "convert", "-sf", "keras", "-iw", "m.h5", "-df", "onnx", "-om", "m.onnx", "--isBGR",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--isBGR"));
}

#[test]
fn unimplemented_source_says_so() {
    let dir = tempfile::tempdir().unwrap();
    mmdnn()
        .current_dir(dir.path())
        .args([
            "toir",
            "-f",
            "caffe",
            "-n",
            "x.prototxt",
            "-w",
            "x.caffemodel",
            "-o",
            "out",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("caffe parser is not implemented"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn toir_of_an_mmdnn_ir_then_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("tiny");
    mmdnn()
        .args(["toir", "-f", "mmdnn", "-n"])
        .arg(example("keras_tiny.pb"))
        .arg("-w")
        .arg(example("keras_tiny.npy"))
        .arg("-o")
        .arg(&prefix)
        .assert()
        .success();
    for ext in ["pb", "json", "npz"] {
        assert!(prefix.with_extension(ext).is_file(), "{ext} missing");
    }
    // Outputs get the permissions of any new file (0666 less the umask), not a temp file's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        for ext in ["pb", "json", "npz"] {
            assert_eq!(
                mode(&prefix.with_extension(ext)),
                mode(&plain),
                "{ext} mode"
            );
        }
    }
    mmdnn()
        .arg("inspect")
        .arg(prefix.with_extension("pb"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("float32[?, 8, 8, 3]")
                .and(predicate::str::contains("float32[?, 5]"))
                // conv 3*3*3*4+4, dense 64*5+5
                .and(predicate::str::contains(format!(
                    "parameters: {}",
                    3 * 3 * 3 * 4 + 4 + 64 * 5 + 5
                )))
                .and(predicate::str::contains("unsupported ops: none")),
        );
}

#[test]
fn failed_toir_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    // The graph needs weights that an empty archive does not have: validation fails.
    let empty = dir.path().join("empty.npz");
    mmdnn::weights::NpzWriter::create(&empty)
        .unwrap()
        .finish()
        .unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    mmdnn()
        .args(["toir", "-f", "mmdnn", "-n"])
        .arg(example("keras_tiny.pb"))
        .arg("-w")
        .arg(&empty)
        .arg("-o")
        .arg(out.join("x"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("missing from the weights file"));
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "no partial output"
    );
}

#[test]
fn install_aliases_makes_working_links() {
    let dir = tempfile::tempdir().unwrap();
    mmdnn()
        .arg("install-aliases")
        .arg(dir.path())
        .assert()
        .success();
    for name in ["mmconvert", "mmtoir", "mmtocode", "mmtomodel", "mmdownload"] {
        assert!(dir.path().join(name).symlink_metadata().is_ok(), "{name}");
    }
    Command::new(dir.path().join("mmtoir"))
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--dstPath"));
}

/// Writes the example as an mmdnn IR under `dir`, returning its prefix.
fn example_ir(dir: &Path) -> PathBuf {
    let prefix = dir.join("tiny");
    mmdnn()
        .args(["toir", "-f", "mmdnn", "-n"])
        .arg(example("keras_tiny.pb"))
        .arg("-w")
        .arg(example("keras_tiny.npy"))
        .arg("-o")
        .arg(&prefix)
        .assert()
        .success();
    prefix
}

#[test]
fn run_writes_outputs_and_intermediates() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = example_ir(dir.path());
    let out = dir.path().join("out");
    mmdnn()
        .args(["run", "-n"])
        .arg(prefix.with_extension("pb"))
        .args(["--random-input", "--seed", "3", "--intermediate", "-o"])
        .arg(&out)
        .assert()
        .success();
    let t = mmdnn::weights::npy::read_file(&out.join("dense_1_activation.npy")).unwrap();
    assert_eq!(t.info.shape, vec![1, 5]);
    let probs = t.to_f32();
    assert!(
        (probs.iter().sum::<f32>() - 1.0).abs() < 1e-5,
        "softmax output sums to 1: {probs:?}"
    );
    assert_eq!(
        out.join("nodes").read_dir().unwrap().count(),
        7,
        "one file per node output"
    );
}

#[test]
fn verify_names_the_first_divergent_node_of_a_corrupted_weight() {
    use mmdnn::weights::{NpzReader, NpzWriter, Tensor, WeightReader};
    let dir = tempfile::tempdir().unwrap();
    let prefix = example_ir(dir.path());
    // Same graph, one weight value changed.
    let bad = dir.path().join("bad");
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
    let verify = |candidate: &Path| {
        let mut c = mmdnn();
        c.args(["verify", "--random-input", "--seed", "1", "--reference"])
            .arg(prefix.with_extension("pb"))
            .arg("--candidate")
            .arg(candidate.with_extension("pb"));
        c
    };
    verify(&prefix)
        .assert()
        .success()
        .stdout(predicate::str::contains("first divergent layer: none"));
    verify(&bad).arg("--per-layer").assert().code(1).stdout(
        predicate::str::contains("first divergent layer: conv2d_1\n")
            .and(predicate::str::contains("OUT OF TOLERANCE")),
    );
}

/// `--dim` pins any symbolic dim, the batch included; a name the model does not use is an
/// error that lists the ones it does.
#[test]
fn dim_pins_a_symbol_and_names_the_symbols_otherwise() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx/transformer_op13_symbolic_batch.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    for (pin, want) in [
        (None, "float32[batch, 6, 16]"),
        (Some("batch=3"), "float32[3, 6, 16]"),
    ] {
        let mut cmd = mmdnn();
        cmd.args(["toir", "-f", "onnx", "-n"])
            .arg(&model)
            .arg("-o")
            .arg(&out);
        if let Some(p) = pin {
            cmd.args(["--dim", p]);
        }
        cmd.assert().success();
        mmdnn()
            .arg("inspect")
            .arg(out.with_extension("pb"))
            .assert()
            .success()
            .stdout(predicate::str::contains(want));
    }
    mmdnn()
        .args(["toir", "-f", "onnx", "-n"])
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .args(["--dim", "seq=4"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("--dim names seq")
                .and(predicate::str::contains("symbols are: batch")),
        );
    mmdnn()
        .args(["toir", "-f", "onnx", "-n"])
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .args(["--dim", "batch=0"])
        .assert()
        .code(2);
}
