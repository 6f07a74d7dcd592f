//! Source frameworks: each reads its model format natively and produces an IR graph plus a lazy
//! weight reader. [`FRONTENDS`] registers every reader (one line each) and [`PLANNED`] the names
//! MMdnn accepted whose readers are still to come; the CLI finds a frontend by name or by file
//! ([`find`], [`detect`]: content first, see [`sniff`]) and never names a framework itself.
pub mod builder;
pub mod keras;
pub mod mmdnn;
pub mod onnx;
pub mod sniff;

/// The IR files the staged commands pass on (`<prefix>.pb` and its weights), which the IR
/// frontend reads.
pub mod ir_files {
    pub use super::mmdnn::{graph_beside, is_ir_file, load_graph, load_ir, sibling_weights};
}

use crate::ir::Graph;
use crate::weights::WeightReader;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// A source framework's reader. Each frontend module defines one and registers it once in
/// [`FRONTENDS`]; the CLI, `inspect`, `run`, the support matrix and the docs find it there.
pub trait Frontend: Sync {
    /// The name `-sf`/`-f` takes (MMdnn's spelling).
    fn name(&self) -> &'static str;
    /// Other accepted names.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// The files it reads, for help and the support matrix.
    fn formats(&self) -> &'static str;
    /// Whether `path` holds a model of this framework: judged by content first (`head`, the
    /// file's first bytes; empty for a directory or an unreadable file), then by extension.
    fn detects(&self, path: &Path, head: &[u8]) -> bool;
    /// Reads the model into a validated IR graph and a lazy weight reader.
    fn read(&self, args: &SourceArgs) -> Result<Loaded>;
    /// [`Frontend::read`], then the dims `--dim` pins (the one way the CLI reads a model).
    fn load(&self, args: &SourceArgs) -> Result<Loaded> {
        let mut loaded = self.read(args)?;
        crate::ir::passes::pin::pin_dims(&mut loaded.graph, &args.dims)?;
        Ok(loaded)
    }
}

/// Every frontend, one line each.
pub static FRONTENDS: &[&dyn Frontend] = &[&mmdnn::Mmdnn, &keras::Keras, &onnx::Onnx];

/// A framework name the CLI accepts whose reader or writer does not exist yet.
#[derive(Clone, Copy, Debug)]
pub struct Planned {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// The files it will read or write, for help and the support matrix.
    pub formats: &'static str,
    /// File extensions that name it (lower case, no dot), so `run`/`inspect` can say which
    /// reader a file needs.
    pub extensions: &'static [&'static str],
}

impl Planned {
    pub fn matches(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// Source frameworks MMdnn read whose readers are still to come.
pub const PLANNED: &[Planned] = &[
    Planned {
        name: "tensorflow",
        aliases: &["tf"],
        formats: "frozen .pb, checkpoint, SavedModel",
        extensions: &[],
    },
    Planned {
        name: "pytorch",
        aliases: &[],
        formats: ".pt/.pth (TorchScript or state_dict), .pt2",
        extensions: &["pt", "pth", "pt2"],
    },
    Planned {
        name: "caffe",
        aliases: &[],
        formats: ".prototxt + .caffemodel",
        extensions: &["caffemodel", "prototxt"],
    },
    Planned {
        name: "mxnet",
        aliases: &[],
        formats: "-symbol.json + .params",
        extensions: &["params"],
    },
    Planned {
        name: "cntk",
        aliases: &[],
        formats: ".model / .dnn",
        extensions: &["dnn"],
    },
    Planned {
        name: "darknet",
        aliases: &[],
        formats: ".cfg + .weights",
        extensions: &["cfg", "weights"],
    },
    Planned {
        name: "coreml",
        aliases: &[],
        formats: ".mlmodel",
        extensions: &["mlmodel"],
    },
    Planned {
        name: "paddle",
        aliases: &[],
        formats: "inference.json + .pdiparams",
        extensions: &["pdiparams", "pdmodel"],
    },
    Planned {
        name: "torch",
        aliases: &["torch7"],
        formats: ".t7",
        extensions: &["t7"],
    },
    Planned {
        name: "caffe2",
        aliases: &[],
        formats: "init_net.pb + predict_net.pb",
        extensions: &[],
    },
];

fn named(f: &dyn Frontend, name: &str) -> bool {
    f.name() == name || f.aliases().contains(&name)
}

/// Every accepted source name, aliases included (for the CLI's value check).
pub fn source_names() -> Vec<&'static str> {
    let ready = FRONTENDS
        .iter()
        .flat_map(|f| std::iter::once(f.name()).chain(f.aliases().iter().copied()));
    let planned = PLANNED
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()));
    ready.chain(planned).collect()
}

/// The frontend named `name`; a plain error for a planned or unknown one.
pub fn find(name: &str) -> Result<&'static dyn Frontend> {
    if let Some(f) = FRONTENDS.iter().find(|f| named(**f, name)) {
        return Ok(*f);
    }
    match PLANNED.iter().find(|p| p.matches(name)) {
        Some(p) => bail!(
            "mmdnn {} cannot read {} models yet: the {} parser is not implemented. \
             Frameworks that can be read now: {}",
            env!("CARGO_PKG_VERSION"),
            p.name,
            p.name,
            ready_names()
        ),
        None => bail!("unknown source framework '{name}'"),
    }
}

/// The frontend that reads `path`, told by its content and extension; for a model no reader
/// exists for yet, or a file that is no model, an error that says what it is.
pub fn detect(path: &Path) -> Result<&'static dyn Frontend> {
    match sniff::sniff(path) {
        sniff::Kind::Reader(f) => Ok(f),
        sniff::Kind::Planned { framework, what } => {
            let why = match framework.and_then(|name| find(name).err()) {
                Some(e) => format!("{e}"),
                None => format!(
                    "mmdnn {} has no reader for it. Frameworks that can be read now: {}",
                    env!("CARGO_PKG_VERSION"),
                    ready_names()
                ),
            };
            bail!("{} is {what}: {why}", path.display())
        }
        sniff::Kind::Other(what) => bail!(
            "{} is {what}, not a model file mmdnn reads (frameworks that can be read now: {})",
            path.display(),
            ready_names()
        ),
        sniff::Kind::Unknown => bail!(
            "cannot tell the framework of {} from its content or extension; pass -f",
            path.display()
        ),
    }
}

/// The file's first bytes (empty for a directory or an unreadable file).
fn file_head(path: &Path, len: u64) -> Vec<u8> {
    use std::io::Read;
    let mut head = Vec::with_capacity(len as usize);
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(len).read_to_end(&mut head);
    }
    head
}

/// A path's extension in lower case ("" when it has none).
pub fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Names of the frameworks that can be read now.
pub fn ready_names() -> String {
    FRONTENDS
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the user gave for the source model (MMdnn's -n/-w and parser flags).
#[derive(Clone, Debug, Default)]
pub struct SourceArgs {
    pub network: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    /// One shape per input, as given to --inputShape (batch excluded, MMdnn's convention).
    pub input_shapes: Vec<Vec<i64>>,
    /// Symbolic dims pinned to sizes (`--dim N=1`), applied to the graph a reader built.
    pub dims: std::collections::BTreeMap<String, i64>,
    pub in_nodes: Vec<String>,
    pub dst_nodes: Vec<String>,
    pub caffe_phase: Option<String>,
    pub darknet_start: Option<u8>,
}

/// The error of a model a reader could not convert whole: its message (as the reader words it),
/// every problem, and the graph as far as it was converted, so `inspect` can still report on
/// the model. Readers return it as an `anyhow::Error`; find it with `downcast_ref`.
#[derive(Debug)]
pub struct Unconverted {
    pub message: String,
    /// One line per problem (an unsupported op with the nodes using it, a failing layer, …).
    pub problems: Vec<String>,
    /// The inputs and the nodes converted, when the reader got that far.
    pub partial: Option<Box<Graph>>,
}

impl std::fmt::Display for Unconverted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unconverted {}

/// A loaded source model: its graph (validated, typed) and lazily read weights.
pub struct Loaded {
    pub graph: Graph,
    pub weights: Box<dyn WeightReader>,
}

/// Reads a source model with the named framework's parser.
pub fn load(framework: &str, args: &SourceArgs) -> Result<Loaded> {
    find(framework)?.load(args)
}
