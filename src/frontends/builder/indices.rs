//! Constant indices checked against the axis they index, after folding: a Gather or ScatterND
//! whose indices are a stored constant out of range for its data's (known) dims is refused when
//! the model is read, not when it first runs. Indices computed at run time are the
//! interpreter's to check.
use crate::interp::Value;
use crate::ir::{Graph, Node};
use crate::weights::WeightReader;
use anyhow::{bail, Result};

/// Fails listing every node whose constant indices fall outside the dims they index.
pub fn check_constant_indices(graph: &Graph, weights: &dyn WeightReader) -> Result<()> {
    let index = graph.index();
    let mut problems = vec![];
    for node in &graph.nodes {
        if !matches!(node.op.as_str(), "Gather" | "ScatterND") || node.inputs.len() < 2 {
            continue;
        }
        let (data, indices) = (&node.inputs[0], &node.inputs[1]);
        let Some(&producer) = index.get(indices.node.as_str()) else {
            continue;
        };
        let producer = &graph.nodes[producer];
        let data_shape = index
            .get(data.node.as_str())
            .and_then(|&i| graph.nodes[i].outputs.get(data.index))
            .map(|t| t.shape.clone());
        let (Some(data_shape), "Constant") = (data_shape, producer.op.as_str()) else {
            continue;
        };
        let Some(values) = constant_ints(producer, weights)? else {
            continue;
        };
        if let Some(why) = out_of_range(node, &data_shape, &values)? {
            problems.push(format!(
                "node '{}' ({}): constant indices '{}' {why}",
                node.name, node.op, producer.name
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "indices out of range ({} node{}):\n  - {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("\n  - ")
    )
}

/// A Constant's integer values with their shape; `None` when it has no stored value or is not
/// an integer tensor.
fn constant_ints(node: &Node, weights: &dyn WeightReader) -> Result<Option<ndarray::ArrayD<i64>>> {
    if weights.info(&node.name, "value").is_none() {
        return Ok(None);
    }
    match Value::from_tensor(&weights.read(&node.name, "value")?)? {
        Value::I64(a) => Ok(Some(a)),
        _ => Ok(None),
    }
}

/// Why `indices` do not fit `data` (dims of -1 are not checked).
fn out_of_range(
    node: &Node,
    data: &[i64],
    indices: &ndarray::ArrayD<i64>,
) -> Result<Option<String>> {
    let bad = |i: i64, dim: i64| dim >= 0 && (i < -dim || i >= dim);
    if node.op == "Gather" {
        let axis = crate::ir::ops::Attrs::of(node)?.int("axis")?;
        let rank = data.len() as i64;
        let Some(&dim) = usize::try_from(if axis < 0 { axis + rank } else { axis })
            .ok()
            .and_then(|a| data.get(a))
        else {
            return Ok(None); // the shape rule reports the axis
        };
        return Ok(indices
            .iter()
            .find(|&&i| bad(i, dim))
            .map(|i| format!("hold {i}, outside [-{dim}, {dim}) for axis {axis} of size {dim}")));
    }
    // ScatterND: the last axis of `indices` holds index tuples into data's leading dims.
    let Some(&k) = indices.shape().last() else {
        return Ok(None);
    };
    for (n, tuple) in indices
        .iter()
        .collect::<Vec<_>>()
        .chunks(k.max(1))
        .enumerate()
    {
        for (axis, (&&i, &dim)) in tuple.iter().zip(data).enumerate() {
            if bad(i, dim) {
                return Ok(Some(format!(
                    "tuple {n} holds {i} for axis {axis} of size {dim}"
                )));
            }
        }
    }
    Ok(None)
}
