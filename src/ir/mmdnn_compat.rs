//! Reading IR written by Microsoft MMdnn 0.3.1: maps its op names, attributes (NHWC layout,
//! 8-element pads, Keras-style kernels) and weight keys to mmdnn's conventions.
use super::graph::Graph;
use crate::proto;
use anyhow::{bail, Result};

/// How MMdnn's weights (keyed by its node and parameter names) map onto the imported graph.
#[derive(Clone, Debug, Default)]
pub struct WeightMap {}

/// Converts an MMdnn GraphDef into an mmdnn graph.
pub fn import(_gd: &proto::GraphDef) -> Result<(Graph, WeightMap)> {
    bail!("reading MMdnn IR is not implemented yet")
}

impl WeightMap {
    /// Wraps MMdnn's weights into a reader keyed by the imported graph's names.
    pub fn wrap(
        &self,
        mmdnn: Box<dyn crate::weights::WeightReader>,
    ) -> Box<dyn crate::weights::WeightReader> {
        mmdnn
    }
}
