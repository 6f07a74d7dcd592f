//! The command line's handling of paths and flags, as a new user meets it: the staged MMdnn
//! commands hand weights on under MMdnn's names, a model file's extension must fit its target,
//! no output may overwrite an input, messages name the path and say what is wrong, and each
//! command names the flags it takes.
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

/// The example MMdnn IR written as an mmdnn IR under `dir`: `<dir>/ir.pb` and `<dir>/ir.npz`.
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
        .assert()
        .success();
    prefix
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A stand-in for Python running the script `tocode -f onnx` wrote: copies `--weights` to
/// `--output`, failing as Python would when the weights file is missing.
fn fake_python(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-python");
    std::fs::write(
        &path,
        "#!/bin/sh\nshift\nwhile [ $# -gt 0 ]; do case \"$1\" in\n  --weights) W=\"$2\"; shift 2;;\n  \
         --output) O=\"$2\"; shift 2;;\n  *) shift;;\nesac; done\n\
         [ -f \"$W\" ] || { echo \"FileNotFoundError: $W\" >&2; exit 1; }\ncp \"$W\" \"$O\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn onnx_staged_commands_hand_weights_on_under_mmdnn_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ir = ir(d);
    // MMdnn's staged flow: mmtocode -dw w.npy, then mmtomodel -iw w.npy.
    alias(d, "mmtocode")
        .args(["-f", "onnx", "-in"])
        .arg(ir.with_extension("pb"))
        .arg("-iw")
        .arg(ir.with_extension("npz"))
        .arg("-o")
        .arg(d.join("code.py"))
        .arg("-dw")
        .arg(d.join("w.npy"))
        .assert()
        .success();
    // The weights are an .npz archive (what the script reads), under the prefix asked for.
    let written = d.join("w.npz");
    assert!(written.is_file(), "no weights written: {:?}", files_in(d));
    assert_eq!(
        std::fs::read(&written).unwrap(),
        std::fs::read(ir.with_extension("npz")).unwrap()
    );
    alias(d, "mmtomodel")
        .args(["-f", "onnx", "-in"])
        .arg(d.join("code.py"))
        .arg("-iw")
        .arg(d.join("w.npy"))
        .arg("-o")
        .arg(d.join("model.onnx"))
        .arg("--python")
        .arg(fake_python(d))
        .assert()
        .success();
    assert!(d.join("model.onnx").is_file());
}

#[test]
fn tomodel_names_missing_weights_before_running_python() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ir = ir(d);
    mmdnn()
        .args(["tocode", "-f", "onnx", "-n"])
        .arg(ir.with_extension("pb"))
        .arg("-w")
        .arg(ir.with_extension("npz"))
        .arg("-d")
        .arg(d.join("code.py"))
        .assert()
        .success();
    mmdnn()
        .args(["tomodel", "-f", "onnx", "-n"])
        .arg(d.join("code.py"))
        .arg("-w")
        .arg(d.join("gone.npy"))
        .arg("-o")
        .arg(d.join("model.onnx"))
        .arg("--python")
        .arg(fake_python(d))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("gone.npy")
                .and(predicate::str::contains("does not exist"))
                .and(predicate::str::contains("FileNotFoundError").not()),
        );
}

#[test]
fn a_model_extension_that_contradicts_the_target_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ir = ir(d);
    let convert = |df: &str, out: &str| {
        let mut c = mmdnn();
        c.args(["convert", "-sf", "mmdnn", "-in"])
            .arg(ir.with_extension("pb"))
            .arg("-iw")
            .arg(ir.with_extension("npz"))
            .args(["-df", df, "-om"])
            .arg(d.join(out));
        c
    };
    let before = files_in(d);
    convert("pytorch", "x.onnx").assert().code(2).stderr(
        predicate::str::contains("x.onnx")
            .and(predicate::str::contains(".pth"))
            .and(predicate::str::contains("pytorch")),
    );
    convert("onnx", "x.pth")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("x.pth").and(predicate::str::contains(".onnx")));
    assert_eq!(files_in(d), before, "nothing written");
    // The target's own extensions, and none at all, are fine.
    convert("pytorch", "m.pth").assert().success();
    convert("onnx", "m.onnx").assert().success();
    convert("onnx", "plain").assert().success();
}

#[test]
fn no_output_overwrites_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ir = ir(d);
    std::fs::create_dir(d.join("sub")).unwrap();
    let (pb, npz) = (ir.with_extension("pb"), ir.with_extension("npz"));
    let saved = (std::fs::read(&pb).unwrap(), std::fs::read(&npz).unwrap());
    // toir onto its own prefix (spelt another way: the paths are compared canonically).
    mmdnn()
        .args(["toir", "-f", "mmdnn", "-n"])
        .arg(&pb)
        .arg("-w")
        .arg(&npz)
        .arg("-o")
        .arg(d.join("sub/../ir"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ir.pb").and(predicate::str::contains("overwrite")));
    // layout onto its input.
    mmdnn()
        .args(["layout", "--to", "channels_first", "-n"])
        .arg(&pb)
        .arg("-o")
        .arg(&ir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("overwrite"));
    // tocode's converted weights onto the IR weights.
    mmdnn()
        .args(["tocode", "-f", "pytorch", "-n"])
        .arg(&pb)
        .arg("-w")
        .arg(&npz)
        .arg("-d")
        .arg(d.join("code.py"))
        .arg("-dw")
        .arg(d.join("sub/../ir.npz"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ir.npz"));
    // tocode's weights onto its own code.
    mmdnn()
        .args(["tocode", "-f", "pytorch", "-n"])
        .arg(&pb)
        .arg("-w")
        .arg(&npz)
        .arg("-d")
        .arg(d.join("code.py"))
        .arg("-dw")
        .arg(d.join("code.py"))
        .assert()
        .code(2);
    // convert onto its source model, through a symbolic link.
    mmdnn()
        .args(["convert", "-sf", "mmdnn", "-in"])
        .arg(&pb)
        .arg("-iw")
        .arg(&npz)
        .args(["-df", "onnx", "-om"])
        .arg(d.join("m.onnx"))
        .assert()
        .success();
    std::os::unix::fs::symlink(d.join("m.onnx"), d.join("link.onnx")).unwrap();
    let model = std::fs::read(d.join("m.onnx")).unwrap();
    mmdnn()
        .args(["convert", "-sf", "onnx", "-iw"])
        .arg(d.join("m.onnx"))
        .args(["-df", "onnx", "-om"])
        .arg(d.join("link.onnx"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("m.onnx"));
    // tomodel onto its weights.
    mmdnn()
        .args(["tocode", "-f", "pytorch", "-n"])
        .arg(&pb)
        .arg("-w")
        .arg(&npz)
        .arg("-d")
        .arg(d.join("code.py"))
        .arg("-dw")
        .arg(d.join("w.pth"))
        .assert()
        .success();
    let state = std::fs::read(d.join("w.pth")).unwrap();
    mmdnn()
        .args(["tomodel", "-f", "pytorch", "-n"])
        .arg(d.join("code.py"))
        .arg("-w")
        .arg(d.join("w.pth"))
        .arg("-o")
        .arg(d.join("w.pth"))
        .assert()
        .code(2);
    assert_eq!(std::fs::read(&pb).unwrap(), saved.0);
    assert_eq!(std::fs::read(&npz).unwrap(), saved.1);
    assert_eq!(std::fs::read(d.join("m.onnx")).unwrap(), model);
    assert_eq!(std::fs::read(d.join("w.pth")).unwrap(), state);
}

#[test]
fn a_directory_given_for_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ir = ir(d);
    let folder = d.join("folder");
    std::fs::create_dir(&folder).unwrap();
    let convert = |iw: &Path, om: &Path| {
        let mut c = mmdnn();
        c.args(["convert", "-sf", "mmdnn", "-in"])
            .arg(ir.with_extension("pb"))
            .arg("-iw")
            .arg(iw)
            .args(["-df", "pytorch", "-om"])
            .arg(om);
        c
    };
    let out = convert(&folder, &d.join("m.pth")).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains(&folder.display().to_string()) && err.contains("is a directory"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    // An existing directory as the output: said once, with its path.
    let out = convert(&ir.with_extension("npz"), &folder).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains(&folder.display().to_string()) && err.matches("directory").count() == 1,
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    // An output under a file: the file is named as what is wrong.
    let out = convert(&ir.with_extension("npz"), &d.join("ir.json/x.pth"))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("ir.json") && err.contains("is a file"),
        "{err}"
    );
    assert!(!err.contains("does not exist"), "{err}");
    // An output under a missing directory.
    convert(&ir.with_extension("npz"), &d.join("nowhere/x.pth"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("nowhere").and(predicate::str::contains("does not exist")),
        );
}

#[test]
fn a_missing_source_names_the_flags_of_the_command() {
    let dir = tempfile::tempdir().unwrap();
    alias(dir.path(), "mmconvert")
        .args(["-sf", "onnx", "-df", "pytorch", "-om"])
        .arg(dir.path().join("y.pth"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("-iw")
                .and(predicate::str::contains("--inputWeight"))
                .and(predicate::str::contains("-n model.onnx").not()),
        );
    mmdnn()
        .args(["toir", "-f", "onnx", "-o"])
        .arg(dir.path().join("ir"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-n"));
}

#[test]
fn alias_help_reads_as_the_mmdnn_command() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flag) in [
        ("mmconvert", "--srcFramework"),
        ("mmtoir", "--dstPath"),
        ("mmtocode", "--dstWeightPath"),
        ("mmtomodel", "--outputModel"),
    ] {
        let out = alias(dir.path(), name).arg("--help").assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            text.contains(&format!("Usage: {name} [OPTIONS]")),
            "{name}: {text}"
        );
        assert!(text.contains(flag), "{name}: {text}");
    }
    // A usage error through an alias names the alias too.
    alias(dir.path(), "mmtoir")
        .arg("--bogus")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("Usage: mmtoir")
                .and(predicate::str::contains("mmtoir toir").not()),
        );
}
