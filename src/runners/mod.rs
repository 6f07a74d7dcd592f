//! Runs models in their own framework through small Python runners kept in this folder and
//! embedded in the binary, for `mmdnn verify`. Python is found as `--python`, `MMDNN_PYTHON`,
//! the active virtual environment, else `python3`.
use crate::interp::Value;
use crate::ir::DType;
use crate::weights::npy;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
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
        "pt" | "pth" | "pt2" | "py" | "bin" | "pkl" => "pytorch",
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

/// A model's input or output as its framework declares it.
#[derive(Clone, Debug, Deserialize)]
pub struct Port {
    pub name: String,
    /// Each dim: a size, a dim name (a named dynamic dim) or null (an unnamed dynamic one);
    /// None when the framework does not say.
    pub shape: Option<Vec<PortDim>>,
    pub dtype: Option<String>,
}

/// One dim of a [`Port`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PortDim {
    Size(u64),
    Named(String),
    Unnamed(()),
}

/// A model's inputs and outputs (outputs may be empty: not declared).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Interface {
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
}

/// What one run returned: the outputs, named, and (when asked) every intermediate tensor the
/// framework exposes, each under the names it can be matched by, in execution order.
#[derive(Default)]
pub struct RunOutput {
    pub outputs: Vec<(String, Value)>,
    pub layers: Vec<(Vec<String>, Value)>,
}

/// A model run by its own framework: its file, its weights when apart, its framework.
pub struct Job<'a> {
    pub framework: &'a str,
    pub model: &'a Path,
    pub weights: Option<&'a Path>,
    pub python: &'a Path,
}

#[derive(Deserialize)]
struct Named {
    name: String,
    file: String,
}

#[derive(Deserialize)]
struct Layer {
    keys: Vec<String>,
    file: String,
}

#[derive(Deserialize)]
struct RunFiles {
    outputs: Vec<Named>,
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Reply {
    interface: Option<Interface>,
    runtime: Option<String>,
    runs: Vec<RunFiles>,
}

impl Job<'_> {
    /// The model's interface as its framework declares it (None: the framework does not say),
    /// and the library (with its version) that runs it.
    pub fn describe(&self) -> Result<(Option<Interface>, String)> {
        let reply = self.call(true, false, &[])?;
        Ok((reply.0, reply.2))
    }

    /// Runs the model once per input set (each input with the dtype to write it as, when
    /// known); `layers` also fetches intermediate tensors.
    pub fn run(
        &self,
        runs: &[Vec<(String, Value, Option<DType>)>],
        layers: bool,
    ) -> Result<Vec<RunOutput>> {
        Ok(self.call(false, layers, runs)?.1)
    }

    fn call(
        &self,
        describe: bool,
        layers: bool,
        runs: &[Vec<(String, Value, Option<DType>)>],
    ) -> Result<(Option<Interface>, Vec<RunOutput>, String)> {
        let framework = self.framework;
        let (_, source, package) = RUNNERS
            .iter()
            .find(|(f, _, _)| *f == framework)
            .with_context(|| format!("no runner can execute {framework} models"))?;
        let work = crate::output::TempDir::new()?;
        std::fs::write(work.path().join("common.py"), COMMON)?;
        let script = work.path().join(format!("run_{framework}.py"));
        std::fs::write(&script, source)?;
        let mut run_specs = vec![];
        for (r, inputs) in runs.iter().enumerate() {
            let mut specs = vec![];
            for (i, (name, v, dtype)) in inputs.iter().enumerate() {
                let file = format!("in_{r}_{i}.npy");
                let t = match dtype {
                    Some(d) => v
                        .to_tensor(*d)
                        .with_context(|| format!("input '{name}' as {d}"))?,
                    None => v.to_natural_tensor()?,
                };
                npy::write_file(&work.path().join(&file), &t)?;
                specs.push(serde_json::json!({"name": name, "file": file}));
            }
            run_specs.push(specs);
        }
        let absolute = |p: &Path| {
            p.canonicalize()
                .with_context(|| format!("cannot find {}", p.display()))
        };
        let model = absolute(self.model)?;
        let weights = self.weights.map(absolute).transpose()?;
        let job = serde_json::json!({
            "model": model, "weights": weights, "describe": describe, "layers": layers,
            "runs": run_specs,
        });
        std::fs::write(work.path().join("job.json"), serde_json::to_string(&job)?)?;
        let python = self.python;
        let out = crate::output::run_child(Command::new(python).arg(&script).arg(work.path()))
            .with_context(|| format!("cannot start {}", python.display()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("ModuleNotFoundError") {
                bail!(
                    "running {} with {framework} needs Python packages that {} lacks; install them with `{} -m pip install {package}` (or pass --python)\n{stderr}",
                    model.display(),
                    python.display(),
                    python.display()
                );
            }
            bail!(
                "the {framework} runner failed on {}:\n{stderr}",
                model.display()
            );
        }
        let mut reply: Reply =
            serde_json::from_slice(&std::fs::read(work.path().join("result.json"))?)
                .context("reading the runner's result.json")?;
        let read = |file: &str| -> Result<Value> {
            Value::from_tensor(&npy::read_file(&work.path().join(file))?)
        };
        let mut results = vec![];
        for r in std::mem::take(&mut reply.runs) {
            results.push(RunOutput {
                outputs: r
                    .outputs
                    .into_iter()
                    .map(|o| Ok((o.name, read(&o.file)?)))
                    .collect::<Result<_>>()?,
                layers: r
                    .layers
                    .into_iter()
                    .map(|l| Ok((l.keys, read(&l.file)?)))
                    .collect::<Result<_>>()?,
            });
        }
        let runtime = reply.runtime.unwrap_or_else(|| framework.to_string());
        Ok((reply.interface, results, runtime))
    }
}
