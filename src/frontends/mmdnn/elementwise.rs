//! Elementwise binary ops (`Add`, `Sub`, `Mul`, `Div`, `Maximum` — also spelt `Maxmum` by
//! MMdnn — and `Minimum`), with MMdnn's one- and many-input forms.
use super::import::{Importer, MapFn};
use super::node::MmNode;
use crate::ir::Node;
use anyhow::{bail, Result};

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "Add" | "Sub" | "Mul" | "Div" | "Maximum" | "Maxmum" | "Minimum" => binary,
        _ => return None,
    })
}

/// Elementwise binary ops. More than two inputs are folded left into a chain whose last node
/// keeps the name; one input is used twice (MMdnn's parsers drop a repeated input, and its
/// emitters repeat it back).
fn binary(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let op = match n.def.op.as_str() {
        "Maxmum" => "Maximum",
        op => op,
    };
    let mut inputs = n.inputs.clone();
    match inputs.len() {
        0 => bail!("has no inputs"),
        1 => inputs.push(inputs[0].clone()),
        _ => {}
    }
    let last = inputs.pop().expect("two or more inputs");
    let mut acc = inputs[0].clone();
    for x in &inputs[1..] {
        acc = cx.add_new(Node::new(n.name(), op).with_inputs([acc, x.clone()]));
    }
    cx.add(Node::new(n.name(), op).with_inputs([acc, last]));
    Ok(())
}
