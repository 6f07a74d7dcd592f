//! Reductions (axes as attribute or, from opset 13 for ReduceSum and 18 for the others, as an
//! input) and ArgMax/ArgMin. ReduceMax/ReduceMin of bools go through uint8 (false < true, and
//! an empty reduction gives 0 / 255, i.e. false / true as the spec wants).
use super::{axes_op, onnx_dtype, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::DType;
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
    if c.in_ty(0)?.dtype != DType::Bool || !matches!(op.as_str(), "ReduceMax" | "ReduceMin") {
        axes_op(c, &op, &x, axes, keep, Some(&y));
        return Ok(());
    }
    // ONNX types bool reductions only from opset 20 (ReduceMax/Min), and onnxruntime rejects
    // their empty sets; uint8 is typed at every opset.
    let u8x = c.op(
        "Cast",
        &[&x],
        vec![A::I("to", onnx_dtype(DType::U8) as i64)],
    );
    let r = axes_op(c, &op, &u8x, axes, keep, None);
    c.last(
        "Cast",
        &[&r],
        vec![A::I("to", onnx_dtype(DType::Bool) as i64)],
    )
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
