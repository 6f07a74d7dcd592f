//! Dense layers: `FullyConnected` and `Embedding`, weights as MMdnn stored them.
use super::import::{Importer, MapFn};
use super::node::MmNode;
use crate::ir::AttrValue;
use anyhow::Result;

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "FullyConnected" => fully_connected,
        "Embedding" => embedding,
        _ => return None,
    })
}

fn fully_connected(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("FullyConnected")
            .with_attr("units", AttrValue::Int(n.req_int("units")?))
            .with_attr("use_bias", AttrValue::Bool(n.flag("use_bias")?)),
    );
    cx.same_weight(n, "weights", &["weights"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// Embedding; the Keras parser stores the table as `embedding_weights`, others as `weights`.
fn embedding(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("Embedding")
            .with_attr("input_dim", AttrValue::Int(n.req_int("input_dim")?))
            .with_attr("output_dim", AttrValue::Int(n.req_int("output_dim")?)),
    );
    cx.same_weight(n, "weights", &["embedding_weights", "weights"]);
    Ok(())
}
