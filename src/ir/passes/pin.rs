//! Pinning symbolic dims (`--dim N=1`): every dim, attribute and declared type that names a
//! pinned symbol is rewritten with its size, then the graph is validated again (shape rules
//! check what the size implies, e.g. a Reshape that no longer divides).
use crate::ir::{dim, validate, AttrValue, Graph};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Replaces each symbol of `sizes` by its size in `graph`. A name the graph has no symbol of is
/// an error listing the symbols it has.
pub fn pin_dims(graph: &mut Graph, sizes: &BTreeMap<String, i64>) -> Result<()> {
    if sizes.is_empty() {
        return Ok(());
    }
    let present = symbols(graph);
    let missing: Vec<&String> = sizes.keys().filter(|s| !present.contains(*s)).collect();
    if !missing.is_empty() {
        bail!(
            "--dim names {}, which the model's dims do not use; its symbols are: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if present.is_empty() {
                "none".to_string()
            } else {
                present.into_iter().collect::<Vec<_>>().join(", ")
            }
        );
    }
    let bind = |s: &str| sizes.get(s).copied();
    for node in &mut graph.nodes {
        for v in node.attrs.values_mut() {
            match v {
                AttrValue::Ints(l) | AttrValue::Shape(l) => {
                    for d in l.iter_mut() {
                        *d = dim::substitute(*d, &bind)?;
                    }
                }
                AttrValue::Int(d) => *d = dim::substitute(*d, &bind)?,
                _ => {}
            }
        }
        for t in &mut node.outputs {
            for d in t.shape.iter_mut() {
                *d = dim::substitute(*d, &bind)?;
            }
        }
    }
    validate::infer_types(graph)
}

/// Every symbol the graph's inputs declare.
pub fn symbols(graph: &Graph) -> BTreeSet<String> {
    graph
        .nodes
        .iter()
        .filter(|n| graph.inputs.contains(&n.name))
        .flat_map(|n| n.outputs.iter().flat_map(|t| t.shape.clone()))
        .flat_map(dim::symbols)
        .collect()
}
