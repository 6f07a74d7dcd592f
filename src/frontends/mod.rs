//! Source frameworks: each reads its model format natively and produces an IR graph plus a lazy
//! weight reader. `SOURCES` lists every framework name the CLI accepts (MMdnn's spellings) and
//! whether its parser exists yet.
pub mod keras;
pub mod mmdnn;
pub mod onnx;

use crate::ir::Graph;
use crate::weights::WeightReader;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Whether a framework's parser or emitter exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ready,
    Planned,
}

/// A framework name the CLI accepts.
#[derive(Clone, Copy, Debug)]
pub struct Framework {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub status: Status,
    /// The files it reads or writes, for help and the support matrix.
    pub formats: &'static str,
}

impl Framework {
    pub fn matches(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

pub const SOURCES: &[Framework] = &[
    Framework {
        name: "mmdnn",
        aliases: &["ir"],
        status: Status::Ready,
        formats: "MMdnn 0.3.1 or mmdnn IR: -n graph.pb, -w weights (.npz or MMdnn's pickled .npy)",
    },
    Framework {
        name: "keras",
        aliases: &[],
        status: Status::Ready,
        formats: ".h5, .keras, or -n model.json -w weights.h5",
    },
    Framework {
        name: "onnx",
        aliases: &[],
        status: Status::Ready,
        formats: ".onnx (+ external data)",
    },
    Framework {
        name: "tensorflow",
        aliases: &["tf"],
        status: Status::Planned,
        formats: "frozen .pb, checkpoint, SavedModel",
    },
    Framework {
        name: "pytorch",
        aliases: &[],
        status: Status::Planned,
        formats: ".pt/.pth (TorchScript or state_dict), .pt2",
    },
    Framework {
        name: "caffe",
        aliases: &[],
        status: Status::Planned,
        formats: ".prototxt + .caffemodel",
    },
    Framework {
        name: "mxnet",
        aliases: &[],
        status: Status::Planned,
        formats: "-symbol.json + .params",
    },
    Framework {
        name: "cntk",
        aliases: &[],
        status: Status::Planned,
        formats: ".model / .dnn",
    },
    Framework {
        name: "darknet",
        aliases: &[],
        status: Status::Planned,
        formats: ".cfg + .weights",
    },
    Framework {
        name: "coreml",
        aliases: &[],
        status: Status::Planned,
        formats: ".mlmodel",
    },
    Framework {
        name: "paddle",
        aliases: &[],
        status: Status::Planned,
        formats: "inference.json + .pdiparams",
    },
    Framework {
        name: "torch",
        aliases: &["torch7"],
        status: Status::Planned,
        formats: ".t7",
    },
    Framework {
        name: "caffe2",
        aliases: &[],
        status: Status::Planned,
        formats: "init_net.pb + predict_net.pb",
    },
];

/// Every accepted source name, aliases included (for the CLI's value check).
pub fn source_names() -> Vec<&'static str> {
    SOURCES
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
        .collect()
}

/// What the user gave for the source model (MMdnn's -n/-w and parser flags).
#[derive(Clone, Debug, Default)]
pub struct SourceArgs {
    pub network: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    /// One shape per input, as given to --inputShape (batch excluded, MMdnn's convention).
    pub input_shapes: Vec<Vec<i64>>,
    pub in_nodes: Vec<String>,
    pub dst_nodes: Vec<String>,
    pub caffe_phase: Option<String>,
    pub darknet_start: Option<u8>,
}

/// A loaded source model: its graph (validated, typed) and lazily read weights.
pub struct Loaded {
    pub graph: Graph,
    pub weights: Box<dyn WeightReader>,
}

/// Reads a source model with the named framework's parser.
pub fn load(framework: &str, args: &SourceArgs) -> Result<Loaded> {
    let fw = SOURCES
        .iter()
        .find(|f| f.matches(framework))
        .ok_or_else(|| anyhow::anyhow!("unknown source framework '{framework}'"))?;
    match fw.name {
        "mmdnn" => mmdnn::load(args),
        "onnx" => onnx::load(args),
        "keras" => keras::load(args),
        name => bail!(
            "mmdnn {} cannot read {name} models yet: the {name} parser is not implemented. \
             Frameworks that can be read now: {}",
            env!("CARGO_PKG_VERSION"),
            ready(SOURCES)
        ),
    }
}

/// Names of the frameworks whose status is Ready.
pub fn ready(list: &[Framework]) -> String {
    list.iter()
        .filter(|f| f.status == Status::Ready)
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}
