//! Attributes given as tensors computed at run time (see [`crate::ir::ops::FROM_INPUTS`]): the
//! trailing inputs are read into the attributes they stand for, and the op runs as if they had
//! been given as values, so every op's implementation serves both forms.
use super::Value;
use crate::ir::ops::{self, FROM_INPUTS};
use crate::ir::types::AttrKind;
use crate::ir::{AttrValue, Node};
use anyhow::{anyhow, bail, Result};
use std::borrow::Cow;

/// `node` with its run-time attributes set from the trailing `args`, and the other args.
pub fn resolve(node: &Node, mut args: Vec<Value>) -> Result<(Cow<'_, Node>, Vec<Value>)> {
    let n = node.runtime_inputs();
    if n == 0 {
        return Ok((Cow::Borrowed(node), args));
    }
    let def = ops::lookup(node)?;
    let first = args.len().checked_sub(n).ok_or_else(|| {
        anyhow!(
            "{n} attributes are given by tensors, but {} inputs are",
            args.len()
        )
    })?;
    let given = args.split_off(first);
    let mut out = node.clone();
    out.attrs.remove(FROM_INPUTS);
    for (name, v) in node.runtime_attrs().zip(given) {
        let kind = def
            .attr(name)
            .ok_or_else(|| anyhow!("unknown attribute '{name}'"))?
            .kind;
        let value = match (kind, v) {
            (AttrKind::Int, Value::I64(a)) if a.len() == 1 => {
                AttrValue::Int(a.iter().copied().next().unwrap_or_default())
            }
            (AttrKind::Ints | AttrKind::Shape, Value::I64(a)) if a.ndim() <= 1 => {
                AttrValue::Ints(a.iter().copied().collect())
            }
            (AttrKind::Float, Value::F32(a)) if a.len() == 1 => {
                AttrValue::Float(a.iter().copied().next().unwrap_or_default())
            }
            (AttrKind::Floats, Value::F32(a)) if a.ndim() <= 1 => {
                AttrValue::Floats(a.iter().copied().collect())
            }
            (AttrKind::Floats, Value::I64(a)) if a.ndim() <= 1 => {
                AttrValue::Floats(a.iter().map(|&v| v as f32).collect())
            }
            (_, v) => bail!("attribute '{name}' cannot be read from {}", v.describe()),
        };
        out.attrs.insert(name.to_string(), value);
    }
    Ok((Cow::Owned(out), args))
}
