//! Reductions (axes as attribute or, from opset 13 for ReduceSum and 18 for the others, as an
//! input) and ArgMax/ArgMin. ReduceMax/ReduceMin of bools go through uint8 (false < true, and
//! an empty reduction gives 0 / 255, i.e. false / true as the spec wants).
use super::{axes_input_since, axes_op, onnx_dtype, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::DType;
use anyhow::{bail, Result};

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
    let keep = vec![A::I("keepdims", c.a.bool("keepdims")? as i64)];
    let y = c.y(0)?;
    let op = c.node.op.clone();
    // ONNX types bool reductions only from opset 20 (ReduceMax/Min), and onnxruntime rejects
    // their empty sets; uint8 is typed at every opset.
    let bools =
        c.in_ty(0)?.dtype == DType::Bool && matches!(op.as_str(), "ReduceMax" | "ReduceMin");
    let src = if bools {
        let to = A::I("to", onnx_dtype(DType::U8) as i64);
        c.op("Cast", &[&x], vec![to])
    } else {
        x
    };
    let out = (!bools).then_some(y.as_str());
    let r = if c.a.is_runtime("axes") {
        if c.opset() < axes_input_since(&op) {
            bail!(
                "{op} axes computed at run time need opset {}",
                axes_input_since(&op)
            );
        }
        let axes = c.ints_arg("axes")?;
        match out {
            Some(o) => {
                c.emit(&op, &[&src, &axes], &[o], keep);
                o.to_string()
            }
            None => c.op(&op, &[&src, &axes], keep),
        }
    } else {
        let axes = c.a.ints("axes")?;
        // Empty axes reduce everything: ONNX's default when the axes are absent.
        let axes = (!axes.is_empty()).then_some(axes.as_slice());
        axes_op(c, &op, &src, axes, keep, out)
    };
    if !bools {
        return Ok(());
    }
    let to = A::I("to", onnx_dtype(DType::Bool) as i64);
    c.last("Cast", &[&r], vec![to])
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
