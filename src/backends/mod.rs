//! Target frameworks: each has an emitter (IR → readable Python source from Tera templates in
//! `templates/<framework>/`) and a saver (→ the framework's model file). `TARGETS` lists every
//! name the CLI accepts (MMdnn's spellings) and whether its backend exists yet.
pub mod onnx;
pub mod pytorch;

use crate::frontends::{Framework, Status};
use crate::ir::Graph;
use anyhow::{bail, Result};
use std::collections::HashSet;

pub const TARGETS: &[Framework] = &[
    Framework {
        name: "pytorch",
        aliases: &[],
        status: Status::Ready,
        formats: "nn.Module source + state_dict .pth",
    },
    Framework {
        name: "onnx",
        aliases: &[],
        status: Status::Ready,
        formats: ".onnx (opset 17 default)",
    },
    Framework {
        name: "keras",
        aliases: &[],
        status: Status::Planned,
        formats: "Keras 3 .keras / .h5",
    },
    Framework {
        name: "tensorflow",
        aliases: &["tf"],
        status: Status::Planned,
        formats: "SavedModel",
    },
    Framework {
        name: "coreml",
        aliases: &[],
        status: Status::Planned,
        formats: ".mlmodel / .mlpackage",
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
        formats: ".dnn",
    },
    Framework {
        name: "caffe2",
        aliases: &[],
        status: Status::Planned,
        formats: "init_net.pb + predict_net.pb",
    },
];

/// Every accepted target name, aliases included.
pub fn target_names() -> Vec<&'static str> {
    TARGETS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
        .collect()
}

/// Fails plainly for a target whose backend does not exist yet.
pub fn require(framework: &str) -> Result<&'static Framework> {
    let fw = TARGETS
        .iter()
        .find(|f| f.matches(framework))
        .ok_or_else(|| anyhow::anyhow!("unknown target framework '{framework}'"))?;
    if fw.status != Status::Ready {
        let ready = crate::frontends::ready(TARGETS);
        bail!(
            "mmdnn {} cannot write {} models yet: the {} emitter is not implemented. Targets available now: {}",
            env!("CARGO_PKG_VERSION"),
            fw.name,
            fw.name,
            if ready.is_empty() { "none yet (use `mmdnn toir` to produce an IR)".to_string() } else { ready }
        );
    }
    Ok(fw)
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
