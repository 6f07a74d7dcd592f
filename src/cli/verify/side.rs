//! One side of `verify`: an IR run by the interpreter, or a model file run by its own
//! framework (`crate::runners`); what each declares as its inputs, and its runs.
use super::sizes::{Dim, Input};
use crate::cli::run::load_model;
use crate::interp::{Interpreter, Value};
use crate::ir::{ops::Attrs, DType};
use crate::runners::{self, Interface, Job, PortDim, RunOutput};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub enum Side {
    Ir(crate::frontends::Loaded),
    Native {
        framework: &'static str,
        model: PathBuf,
        weights: Option<PathBuf>,
        interface: Option<Interface>,
        runtime: String,
    },
}

impl Side {
    /// Opens `model` (IR graphs in the interpreter; others are described by their framework).
    pub fn open(model: &Path, weights: Option<PathBuf>, python: &Path) -> Result<Side> {
        if crate::frontends::ir_files::is_ir_file(model) {
            return Ok(Side::Ir(load_model(None, model, weights)?));
        }
        let Some(framework) = runners::framework_of(model) else {
            bail!(
                "cannot tell how to run {}: pass an IR graph (.pb) or a .onnx, .h5, .keras, .py (with its .pth), .pth, .pt, .pt2 file or a SavedModel directory",
                model.display()
            );
        };
        let job = Job {
            framework,
            model,
            weights: weights.as_deref(),
            python,
        };
        let (interface, runtime) = job
            .describe()
            .with_context(|| format!("reading the interface of {}", model.display()))?;
        Ok(Side::Native {
            framework,
            model: model.to_path_buf(),
            weights,
            interface,
            runtime,
        })
    }

    /// What runs the model: the interpreter, or the framework's library and version.
    pub fn runtime(&self) -> &str {
        match self {
            Side::Ir(_) => "the mmdnn interpreter",
            Side::Native { runtime, .. } => runtime,
        }
    }

    /// The inputs the model declares (None: its framework does not say).
    pub fn inputs(&self) -> Result<Option<Vec<Input>>> {
        match self {
            Side::Ir(l) => {
                let g = &l.graph;
                let mut out = vec![];
                for name in &g.inputs {
                    let node = g
                        .node(name)
                        .with_context(|| format!("graph input '{name}' has no node"))?;
                    let attrs = Attrs::of(node)?;
                    let dims = attrs
                        .ints("shape")?
                        .iter()
                        .map(|&d| {
                            if d < 0 {
                                Dim::Free(crate::ir::dim::as_symbol(d))
                            } else {
                                Dim::Size(d as usize)
                            }
                        })
                        .collect();
                    out.push(Input {
                        name: name.clone(),
                        dims: Some(dims),
                        dtype: Some(attrs.dtype("dtype")?),
                    });
                }
                Ok(Some(out))
            }
            Side::Native { interface, .. } => Ok(interface.as_ref().map(|i| {
                i.inputs
                    .iter()
                    .map(|p| Input {
                        name: p.name.clone(),
                        dims: p.shape.as_ref().map(|s| {
                            s.iter()
                                .map(|d| match d {
                                    PortDim::Size(n) => Dim::Size(*n as usize),
                                    PortDim::Named(n) => Dim::Free(Some(n.clone())),
                                    PortDim::Unnamed(()) => Dim::Free(None),
                                })
                                .collect()
                        }),
                        dtype: p.dtype.as_deref().and_then(|d| DType::from_name(d).ok()),
                    })
                    .collect()
            })),
        }
    }

    /// Runs the model once per input set; `layers` records intermediate tensors where the
    /// side can (the interpreter always can).
    pub fn run(
        &self,
        runs: &[Vec<(String, Value, Option<DType>)>],
        layers: bool,
        python: &Path,
    ) -> Result<Vec<RunOutput>> {
        match self {
            Side::Ir(l) => runs
                .iter()
                .map(|feeds| {
                    let feeds: Vec<(String, Value)> = feeds
                        .iter()
                        .map(|(n, v, _)| (n.clone(), v.clone()))
                        .collect();
                    let mut recorded = vec![];
                    let outs = Interpreter::new(&l.graph, l.weights.as_ref()).run_all(
                        &feeds,
                        &mut |node, values| {
                            if layers && node.op != "DataInput" {
                                for (i, v) in values.iter().enumerate() {
                                    recorded.push((vec![node.output(i).to_string()], v.clone()));
                                }
                            }
                        },
                    )?;
                    let names = (0..l.graph.outputs.len()).map(|i| l.graph.output_name(i));
                    Ok(RunOutput {
                        outputs: names.zip(outs).collect(),
                        layers: recorded,
                    })
                })
                .collect(),
            Side::Native {
                framework,
                model,
                weights,
                ..
            } => Job {
                framework,
                model,
                weights: weights.as_deref(),
                python,
            }
            .run(runs, layers),
        }
    }

    pub fn is_ir(&self) -> bool {
        matches!(self, Side::Ir(_))
    }
}
