//! Reductions (axes as attribute or, from opset 13 for ReduceSum and 18 for the others, as an
//! input) and ArgMax/ArgMin.
use super::{axes_op, Lower, A};
use crate::backends::onnx::builder::Ctx;
use anyhow::Result;

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL2" => {
            reduce
        }
        "ArgMax" | "ArgMin" => arg,
        _ => return None,
    })
}

fn reduce(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let axes = c.a.ints("axes")?;
    let keep = vec![A::I("keepdims", c.a.bool("keepdims")? as i64)];
    let y = c.y(0)?;
    let op = c.node.op.clone();
    // Empty axes reduce everything: ONNX's default when the axes are absent.
    let axes = (!axes.is_empty()).then_some(axes.as_slice());
    axes_op(c, &op, &x, axes, keep, Some(&y));
    Ok(())
}

fn arg(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let attrs = vec![
        A::I("axis", c.a.int("axis")?),
        A::I("keepdims", c.a.bool("keepdims")? as i64),
        A::I("select_last_index", c.a.bool("select_last_index")? as i64),
    ];
    let op = c.node.op.clone();
    c.last(&op, &[&x], attrs)
}
