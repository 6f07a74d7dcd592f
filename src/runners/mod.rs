//! Runs models in their own framework through small Python runners kept in this folder and
//! embedded in the binary, for `mmdnn verify`. Python is found as `--python`, `MMDNN_PYTHON`,
//! the active virtual environment, else `python3`.
use crate::interp::Value;
use crate::weights::npy;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const COMMON: &str = include_str!("common.py");

/// The frameworks that have a runner, their runner source and the pip package it needs.
const RUNNERS: &[(&str, &str, &str)] = &[
    ("onnx", include_str!("onnxruntime.py"), "onnxruntime"),
    ("keras", include_str!("keras.py"), "keras tensorflow-cpu"),
    (
        "tensorflow",
        include_str!("tensorflow.py"),
        "tensorflow-cpu",
    ),
    ("pytorch", include_str!("pytorch.py"), "torch"),
];

/// The framework whose runner executes `model`, judged by its extension.
pub fn framework_of(model: &Path) -> Option<&'static str> {
    let ext = model
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    Some(match ext.to_ascii_lowercase().as_str() {
        "onnx" => "onnx",
        "h5" | "keras" | "hdf5" => "keras",
        "pt" | "pth" | "pt2" => "pytorch",
        "" if model.join("saved_model.pb").exists() => "tensorflow",
        _ => return None,
    })
}

/// The Python interpreter to use.
pub fn python(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("MMDNN_PYTHON") {
        return p.into();
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        let p = Path::new(&venv).join("bin/python");
        if p.exists() {
            return p;
        }
    }
    "python3".into()
}

/// Runs `model` in its own framework on `inputs`; returns its outputs, named, in order.
pub fn run(
    framework: &str,
    model: &Path,
    inputs: &[(String, Value)],
    python_path: &Path,
) -> Result<Vec<(String, Value)>> {
    let (_, source, package) = RUNNERS
        .iter()
        .find(|(f, _, _)| *f == framework)
        .with_context(|| format!("no runner can execute {framework} models"))?;
    let work = crate::output::TempDir::new()?;
    std::fs::write(work.path().join("common.py"), COMMON)?;
    let script = work.path().join(format!("run_{framework}.py"));
    std::fs::write(&script, source)?;
    let mut specs = vec![];
    for (i, (name, v)) in inputs.iter().enumerate() {
        let file = format!("in_{i}.npy");
        npy::write_file(&work.path().join(&file), &v.to_natural_tensor()?)?;
        specs.push(serde_json::json!({"name": name, "file": file}));
    }
    std::fs::write(
        work.path().join("inputs.json"),
        serde_json::to_string(&specs)?,
    )?;
    let model = model
        .canonicalize()
        .with_context(|| format!("cannot find {}", model.display()))?;
    let out = crate::output::run_child(
        Command::new(python_path)
            .arg(&script)
            .arg(&model)
            .arg(work.path()),
    )
    .with_context(|| format!("cannot start {}", python_path.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("ModuleNotFoundError") {
            bail!(
                "running {} with {framework} needs Python packages that {} lacks; install them with `{} -m pip install {package}` (or pass --python)\n{stderr}",
                model.display(),
                python_path.display(),
                python_path.display()
            );
        }
        bail!(
            "the {framework} runner failed on {}:\n{stderr}",
            model.display()
        );
    }
    let names: Vec<String> =
        serde_json::from_slice(&std::fs::read(work.path().join("outputs.json"))?)?;
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let t = npy::read_file(&work.path().join(format!("out_{i}.npy")))?;
            Ok((name, Value::from_tensor(&t)?))
        })
        .collect()
}
