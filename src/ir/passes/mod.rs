//! Graph-to-graph rewrites, and [`prepare`]: the pipeline's passes stage, which turns a
//! frontend's graph into the graph a backend asked for ([`Wants`]). Backends never run a pass
//! themselves; they receive a [`Prepared`] graph.
pub mod layout;
pub mod pin;

use crate::ir::Graph;
use crate::weights::WeightReader;
use anyhow::{Context, Result};
use layout::{convert_layout_io, IoLayout, Perm, Target, TransformedWeights};

/// What a backend needs of the graph it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wants {
    /// The layout the backend's ops are written in.
    pub layout: Target,
    /// The layout of the graph's inputs and outputs (`--io-layout`; by default the source's).
    pub io: IoLayout,
}

/// A graph ready for a backend, with what the passes changed at its boundary.
pub struct Prepared<'w> {
    /// The converted graph.
    pub graph: Graph,
    /// The converted graph's weights, derived from the source's when read.
    pub weights: TransformedWeights<'w>,
    /// Per graph input: the permutation from the source layout, if any.
    pub input_perms: Vec<Option<Perm>>,
    /// Per graph output: the permutation from the source layout, if any.
    pub output_perms: Vec<Option<Perm>>,
    /// Per graph input: its shape in the source model.
    pub source_inputs: Vec<Option<Vec<i64>>>,
    /// Inputs and outputs named by `--io-layout` whose layout is not known (left as they are).
    pub io_unknown: Vec<String>,
    /// One line per decision the passes took.
    pub log: Vec<String>,
}

/// Runs the passes a backend wants on `graph` (read through `weights`).
pub fn prepare<'w>(
    graph: &Graph,
    weights: &'w dyn WeightReader,
    wants: Wants,
) -> Result<Prepared<'w>> {
    let converted = convert_layout_io(graph, weights, wants.layout, &wants.io)
        .with_context(|| format!("converting the graph to {}", wants.layout.data_format()))?;
    let source_inputs = graph
        .inputs
        .iter()
        .map(|n| {
            graph
                .node(n)
                .and_then(|n| n.outputs.first())
                .map(|t| t.shape.clone())
        })
        .collect();
    Ok(Prepared {
        graph: converted.graph,
        weights: converted.weights,
        input_perms: converted.input_perms,
        output_perms: converted.output_perms,
        source_inputs,
        io_unknown: converted.io_unknown,
        log: converted.log,
    })
}

/// A usage error when `io` names inputs or outputs `graph` does not have.
pub fn check_io_names(graph: &Graph, io: &IoLayout) -> Result<(), String> {
    let unknown = io.unknown_names(graph);
    if unknown.is_empty() {
        return Ok(());
    }
    let outputs: Vec<String> = (0..graph.outputs.len())
        .map(|i| graph.output_name(i))
        .collect();
    Err(format!(
        "--io-layout names {}, which the model does not have (inputs: {}; outputs: {})",
        unknown.join(", "),
        graph.inputs.join(", "),
        outputs.join(", ")
    ))
}
