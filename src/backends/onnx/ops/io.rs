//! Graph inputs and constants: the writer declares graph inputs itself, and a constant's value
//! is an initializer, passed on by an Identity.
use super::Lower;
use crate::backends::onnx::builder::Ctx;
use anyhow::Result;

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "DataInput" => |_| Ok(()),
        "Constant" => constant,
        _ => return None,
    })
}

fn constant(c: &mut Ctx) -> Result<()> {
    let w = c.weight("value")?;
    c.last("Identity", &[&w], vec![])
}
