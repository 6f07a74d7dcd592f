//! Target frameworks: each has an emitter (IR → readable Python source from Tera templates in
//! `templates/<framework>/`) and a saver (→ the framework's model file). [`BACKENDS`] registers
//! every writer (one line each) and [`PLANNED`] the target names MMdnn accepted whose writers are
//! still to come. A backend declares what it wants of the graph (its layout) and receives it
//! [`Prepared`] by the passes stage; the CLI finds it by name and never names a framework.
mod flags;
pub mod onnx;
pub mod pytorch;

pub use flags::{CoremlFlags, OnnxFlags, TargetFlags};

use crate::ir::passes::layout::Target;
use crate::ir::passes::Prepared;
use crate::ir::Graph;
use anyhow::{bail, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The target-side options of `convert`, `tocode` and `tomodel`, as the user gave them. Each
/// backend reads those it declares in [`Backend::flags`] (plus `python`).
#[derive(Clone, Debug, Default)]
pub struct TargetOptions {
    /// Python interpreter for targets that run generated code (`--python`).
    pub python: Option<PathBuf>,
    /// Model file format (`--format`; the backend's first [`Backend::model_formats`] when
    /// not given).
    pub format: Option<String>,
    /// Opset of the written model (`--opset`, ONNX).
    pub opset: Option<i64>,
    /// Weights in a separate file whatever the size (`--external-data`, ONNX).
    pub external_data: bool,
}

/// What a backend wrote, for the command's summary: each file with what it holds, and what it
/// changed on the way.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// What each file holds ("ONNX model (opset 17)", "PyTorch code", …) and its path, in the
    /// order written.
    pub files: Vec<(String, PathBuf)>,
    /// What the backend changed on the way, one line each (names made identifiers, …).
    pub notes: Vec<String>,
    /// Graph inputs and outputs the written model names otherwise than the source.
    pub renamed: Vec<IoRename>,
}

/// A graph input or output the target names otherwise than the source, because its syntax
/// forces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoRename {
    /// "input" or "output".
    pub kind: &'static str,
    pub from: String,
    pub to: String,
    /// Why, e.g. "a Python keyword".
    pub why: String,
}

impl Written {
    pub fn file(mut self, what: impl Into<String>, path: &Path) -> Written {
        self.files.push((what.into(), path.to_path_buf()));
        self
    }
}

/// The weights `tomodel` builds a model from, beside the generated code.
pub enum CodeWeights<'p, 'w> {
    /// A file the backend reads as it is (one [`Backend::reads_weights`] accepts).
    Native(&'p Path),
    /// IR weights, with their graph prepared for the backend.
    Ir(Box<Prepared<'w>>),
}

/// A target framework's writer. Each backend module defines one and registers it once in
/// [`BACKENDS`].
pub trait Backend: Sync {
    /// The name `-df`/`-f` takes (MMdnn's spelling).
    fn name(&self) -> &'static str;
    /// Other accepted names.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// What it writes, for help and the support matrix.
    fn formats(&self) -> &'static str;
    /// The layout its ops are written in: the passes stage converts the graph to it.
    fn layout(&self) -> Target;
    /// The target-specific flags it takes (a usage error on any other target).
    fn flags(&self) -> &'static [&'static str];
    /// The extensions of the model files it writes (lower case, no dot), the usual first: an
    /// output model named with another extension is a usage error.
    fn model_extensions(&self) -> &'static [&'static str];
    /// The model file formats `--format` picks from, the default first (none: one format).
    fn model_formats(&self) -> &'static [&'static str] {
        &[]
    }
    /// The extension of the model file `convert` writes in its default format (no dot): the
    /// first of [`Backend::model_extensions`].
    fn model_extension(&self) -> &'static str {
        self.model_extensions().first().copied().unwrap_or_default()
    }
    /// `convert`: writes the model file `out` (and whatever goes with it).
    fn save_model(&self, model: Prepared<'_>, out: &Path, opts: &TargetOptions) -> Result<Written>;
    /// `tocode`: writes readable code to `code` (which reads the IR weights `ir_weights`, or
    /// the converted weights written to `weights_out`).
    fn emit_code(
        &self,
        model: Prepared<'_>,
        ir_weights: &Path,
        code: &Path,
        weights_out: Option<&Path>,
        opts: &TargetOptions,
    ) -> Result<Written>;
    /// Whether `tomodel` takes `weights` as they are (else they are IR weights, and the graph
    /// beside them is prepared and handed over as [`CodeWeights::Ir`]).
    fn reads_weights(&self, code: &Path, weights: &Path) -> Result<bool>;
    /// `tomodel`: the model file from the code `tocode` wrote and its weights.
    fn code_to_model(
        &self,
        code: &Path,
        weights: CodeWeights<'_, '_>,
        out: &Path,
        opts: &TargetOptions,
    ) -> Result<Written>;
}

/// Every backend, one line each.
pub static BACKENDS: &[&dyn Backend] = &[&pytorch::PyTorch, &onnx::Onnx];

/// The ops whose attributes every backend writes with symbolic dims in them (a Reshape target
/// `[N, S, 12, 64]`), computed at run time from the inputs' shapes; a DataInput's declared shape
/// is the interface.
pub const WRITES_SYMBOLIC_ATTRS: &[&str] = &[
    "DataInput",
    "Reshape",
    "Expand",
    "Tile",
    "Slice",
    "Resize",
    "Range",
];

/// Refuses a node of another op with a symbolic dim in an attribute, naming `backend`.
pub fn check_symbolic_attrs(node: &crate::ir::Node, backend: &str) -> anyhow::Result<()> {
    if WRITES_SYMBOLIC_ATTRS.contains(&node.op.as_str()) {
        return Ok(());
    }
    if let Some((name, d)) = node.symbolic_attr() {
        anyhow::bail!(
            "attribute '{name}' holds the symbolic dim {}; {backend} writes symbolic dims in the \
             attributes of {} only so far",
            crate::ir::dim::text(d),
            WRITES_SYMBOLIC_ATTRS.join(", ")
        );
    }
    Ok(())
}

/// A target name the CLI accepts whose writer does not exist yet.
#[derive(Clone, Copy, Debug)]
pub struct Planned {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub formats: &'static str,
    /// The target-specific flags it will take (MMdnn's).
    pub flags: &'static [&'static str],
}

/// MMdnn's Core ML options.
const COREML_FLAGS: &[&str] = &[
    "--inputNames",
    "--outputNames",
    "--imageInputNames",
    "--isBGR",
    "--redBias",
    "--greenBias",
    "--blueBias",
    "--grayBias",
    "--scale",
    "--classInputPath",
    "--predictedFeatureName",
];

/// Targets MMdnn wrote whose writers are still to come.
pub const PLANNED: &[Planned] = &[
    Planned {
        name: "keras",
        aliases: &[],
        formats: "Keras 3 .keras / .h5",
        flags: &[],
    },
    Planned {
        name: "tensorflow",
        aliases: &["tf"],
        formats: "SavedModel",
        flags: &["--dump_tag"],
    },
    Planned {
        name: "coreml",
        aliases: &[],
        formats: ".mlmodel / .mlpackage",
        flags: COREML_FLAGS,
    },
    Planned {
        name: "caffe",
        aliases: &[],
        formats: ".prototxt + .caffemodel",
        flags: &[],
    },
    Planned {
        name: "mxnet",
        aliases: &[],
        formats: "-symbol.json + .params",
        flags: &[],
    },
    Planned {
        name: "cntk",
        aliases: &[],
        formats: ".dnn",
        flags: &[],
    },
    Planned {
        name: "caffe2",
        aliases: &[],
        formats: "init_net.pb + predict_net.pb",
        flags: &[],
    },
];

fn named(b: &dyn Backend, name: &str) -> bool {
    b.name() == name || b.aliases().contains(&name)
}

fn planned(name: &str) -> Option<&'static Planned> {
    PLANNED
        .iter()
        .find(|p| p.name == name || p.aliases.contains(&name))
}

/// Every accepted target name, aliases included.
pub fn target_names() -> Vec<&'static str> {
    let ready = BACKENDS
        .iter()
        .flat_map(|b| std::iter::once(b.name()).chain(b.aliases().iter().copied()));
    let planned = PLANNED
        .iter()
        .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()));
    ready.chain(planned).collect()
}

/// Names of the targets that can be written now.
pub fn ready_names() -> String {
    BACKENDS
        .iter()
        .map(|b| b.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backend named `name`; fails plainly for a target whose backend does not exist yet.
pub fn find(name: &str) -> Result<&'static dyn Backend> {
    if let Some(b) = BACKENDS.iter().find(|b| named(**b, name)) {
        return Ok(*b);
    }
    match planned(name) {
        Some(p) => bail!(
            "mmdnn {} cannot write {} models yet: the {} emitter is not implemented. Targets \
             available now: {}",
            env!("CARGO_PKG_VERSION"),
            p.name,
            p.name,
            ready_names()
        ),
        None => bail!("unknown target framework '{name}'"),
    }
}

/// Every `--format` value some backend writes, for the flag's parser.
pub fn model_format_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = vec![];
    for name in BACKENDS.iter().flat_map(|b| b.model_formats()) {
        if !names.contains(name) {
            names.push(name);
        }
    }
    names
}

/// A usage error when target-specific flags in `given` do not belong to target `name`: names
/// each flag and the target it belongs to.
pub fn check_flags(name: &str, given: &[&str]) -> Result<(), String> {
    let accepted: &[&str] = match BACKENDS.iter().find(|b| named(**b, name)) {
        Some(b) => b.flags(),
        None => planned(name).map_or(&[], |p| p.flags),
    };
    let owner = |flag: &str| {
        BACKENDS
            .iter()
            .find(|b| b.flags().contains(&flag))
            .map(|b| b.name())
            .or_else(|| {
                PLANNED
                    .iter()
                    .find(|p| p.flags.contains(&flag))
                    .map(|p| p.name)
            })
            .unwrap_or("another")
    };
    let stray: Vec<&str> = given
        .iter()
        .copied()
        .filter(|f| !accepted.contains(f))
        .collect();
    let Some(first) = stray.first() else {
        return Ok(());
    };
    let verb = if stray.len() == 1 { "applies" } else { "apply" };
    Err(format!(
        "{} only {verb} to the {} target, not {name}",
        stray.join(", "),
        owner(first)
    ))
}

/// Names of the nodes the graph outputs depend on, graph inputs included.
pub(crate) fn needed_nodes(graph: &Graph) -> HashSet<&str> {
    let index = graph.index();
    let mut need: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = graph.outputs.iter().map(|r| r.node.as_str()).collect();
    while let Some(name) = stack.pop() {
        if need.insert(name) {
            if let Some(&i) = index.get(name) {
                stack.extend(graph.nodes[i].inputs.iter().map(|r| r.node.as_str()));
            }
        }
    }
    need.extend(graph.inputs.iter().map(|s| s.as_str()));
    need
}
