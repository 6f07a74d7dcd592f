//! Symbolic dims at run time: each symbol takes its size from the graph inputs fed to a run
//! (an input declared `[N, S]` fed `[2, 40]` binds N = 2 and S = 40; two inputs that disagree on
//! a symbol are an error), and a node whose attributes hold symbolic dims (a Reshape target
//! `[N, S, 12, 64]`) runs with them evaluated.
use crate::interp::Value;
use crate::ir::{dim, AttrValue, Graph, Node};
use anyhow::{anyhow, bail, Result};
use std::borrow::Cow;
use std::collections::HashMap;

/// The size of each symbol in one run.
#[derive(Default, Debug)]
pub struct Bindings(HashMap<String, i64>);

impl Bindings {
    /// Binds the symbols of the graph inputs' declared shapes to the fed values' sizes, then
    /// checks every declared expression (`2*N`) against its fed size.
    pub fn of_inputs(graph: &Graph, feeds: &HashMap<&str, &Value>) -> Result<Bindings> {
        let mut b = Bindings::default();
        let mut declared = vec![];
        for node in graph.nodes.iter().filter(|n| n.op == "DataInput") {
            let (Some(AttrValue::Shape(shape) | AttrValue::Ints(shape)), Some(v)) =
                (node.attrs.get("shape"), feeds.get(node.name.as_str()))
            else {
                continue;
            };
            if shape.len() != v.shape().len() {
                continue; // data_input reports the rank mismatch
            }
            for (axis, (&d, &size)) in shape.iter().zip(v.shape()).enumerate() {
                if !dim::is_symbolic(d) {
                    continue;
                }
                let size = size as i64;
                match dim::as_symbol(d) {
                    Some(s) => match b.0.get(&s) {
                        Some(&other) if other != size => bail!(
                            "dim {s} is {other} in an earlier input but {size} in input '{}' \
                             (axis {axis})",
                            node.name
                        ),
                        _ => {
                            b.0.insert(s, size);
                        }
                    },
                    None => declared.push((node.name.as_str(), axis, d, size)),
                }
            }
        }
        for (input, axis, d, size) in declared {
            match dim::eval(d, &|s| b.0.get(s).copied()) {
                Some(v) if v == size => {}
                Some(v) => bail!(
                    "input '{input}' axis {axis} is declared {} = {v}, but is {size}",
                    dim::text(d)
                ),
                None => bail!(
                    "input '{input}' axis {axis} is declared {}, whose symbols no input sets",
                    dim::text(d)
                ),
            }
        }
        Ok(b)
    }

    fn eval(&self, d: i64, node: &Node, attr: &str) -> Result<i64> {
        if !dim::is_symbolic(d) {
            return Ok(d);
        }
        dim::eval(d, &|s| self.0.get(s).copied()).ok_or_else(|| {
            anyhow!(
                "node '{}' ({}): attribute '{attr}' holds the dim {}, which no graph input sets",
                node.name,
                node.op,
                dim::text(d)
            )
        })
    }

    /// `node` with every symbolic dim in its attributes replaced by its size in this run (the
    /// node itself when it has none).
    pub fn specialise<'n>(&self, node: &'n Node) -> Result<Cow<'n, Node>> {
        if node.symbolic_attr().is_none() {
            return Ok(Cow::Borrowed(node));
        }
        let mut out = node.clone();
        for (name, v) in out.attrs.iter_mut() {
            match v {
                AttrValue::Ints(l) | AttrValue::Shape(l) => {
                    for d in l.iter_mut() {
                        *d = self.eval(*d, node, name)?;
                    }
                }
                AttrValue::Int(d) => *d = self.eval(*d, node, name)?,
                _ => {}
            }
        }
        Ok(Cow::Owned(out))
    }
}
