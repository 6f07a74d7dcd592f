//! Graph inputs and constants: a DataInput is a `forward` argument; a Constant is a buffer
//! registered in `__init__` and filled from the state dict.
use super::{Ctx, Lower};
use crate::backends::pytorch::names::py_str;
use crate::backends::pytorch::state::Entry;
use crate::backends::pytorch::{torch_dtype, tuple};
use anyhow::Result;

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "DataInput" => data_input,
        "Constant" => constant,
        _ => return None,
    })
}

fn data_input(c: &mut Ctx) -> Result<()> {
    c.bind(0, c.id.clone());
    Ok(())
}

fn constant(c: &mut Ctx) -> Result<()> {
    let info = c.info("value")?;
    let dims: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
    if let Some(note) = c.note() {
        c.e.init.push(note);
    }
    c.e.init.push(format!(
        "self.register_buffer({}, torch.zeros({}, dtype={}))",
        py_str(&c.id),
        tuple(&dims),
        torch_dtype(info.dtype)?
    ));
    let entry = Entry::weight(c.id.clone(), &c.node.name, "value", info);
    c.e.root_buffers.push(entry);
    c.bind(0, format!("self.{}", c.id));
    Ok(())
}
