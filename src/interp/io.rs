//! Graph inputs and constants.
use super::util::one;
use super::{OpCtx, OpFn, Value};
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "DataInput" => data_input,
        "Constant" => constant,
        _ => return None,
    })
}

/// Checks a value against a declared dtype and shape (-1 dims match anything).
fn check_declared(ctx: &OpCtx, v: &Value, what: &str) -> Result<()> {
    let dtype = ctx.attrs.dtype("dtype")?;
    let shape = ctx.attrs.ints("shape")?;
    if !v.holds(dtype) {
        bail!("{what} is {}, but the node declares {dtype}", v.describe());
    }
    let fits = shape.len() == v.shape().len()
        && shape
            .iter()
            .zip(v.shape())
            .all(|(&d, &s)| d < 0 || d as usize == s);
    if !fits {
        bail!(
            "{what} has shape {:?}, but the node declares {}",
            v.shape(),
            crate::ir::types::shape_string(&shape)
        );
    }
    Ok(())
}

/// The interpreter passes the fed value as the only input.
fn data_input(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let v = one(inputs)?;
    check_declared(ctx, &v, "the fed value")?;
    Ok(vec![v])
}

fn constant(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    if !inputs.is_empty() {
        bail!("takes no inputs");
    }
    let v = ctx.weight("value")?;
    check_declared(ctx, &v, "the stored value")?;
    Ok(vec![(*v).clone()])
}
