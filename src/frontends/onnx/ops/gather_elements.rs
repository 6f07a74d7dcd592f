//! GatherElements (opset 11, `torch.gather`), which the IR has no op for: it is lowered to a
//! Gather on the flattened data at flat indices computed from the index tensor,
//! `flat = idx·stride[axis] + Σ_{k≠axis} arange(idx.shape[k])·stride[k]` (each arange shaped to
//! broadcast along its own axis), so the index tensor may be computed at run time and have
//! symbolic dims. The data's dims must be known sizes (its strides are constants); negative
//! indices count from the end of the axis. Constant inputs fold to a constant.
use super::{axis, cast_to, scalar, OpFn};
use crate::frontends::onnx::builder::Val;
use crate::frontends::onnx::node::Ctx;
use crate::ir::{dim, DType};
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "GatherElements" => gather_elements,
        _ => return None,
    })
}

fn gather_elements(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let (data, idx) = (ctx.input(0)?, ctx.input(1)?);
    let (shape, ishape) = (data.shape(), idx.shape());
    let rank = shape.len();
    if ishape.len() != rank {
        bail!(
            "the indices have rank {}, the data rank {rank}; GatherElements needs them equal",
            ishape.len()
        );
    }
    let a = axis(ctx.int("axis", 0)?, rank)?;
    if !shape.iter().all(|&d| dim::is_known(d)) {
        let dims: Vec<String> = shape.iter().map(|&d| dim::text(d)).collect();
        bail!(
            "the data's shape [{}] has dims not known at conversion time; GatherElements is \
             converted only for data of known sizes",
            dims.join(", ")
        );
    }
    for k in (0..rank).filter(|&k| k != a) {
        if !dim::is_known(ishape[k]) && !dim::is_symbolic(ishape[k]) {
            bail!("the indices' dim {k} is unknown (neither a size nor a symbol)");
        }
        if ishape[k] > shape[k] {
            bail!(
                "the indices' dim {k} ({}) exceeds the data's ({})",
                ishape[k],
                shape[k]
            );
        }
    }
    let strides: Vec<i64> = (0..rank).map(|k| shape[k + 1..].iter().product()).collect();

    // Negative indices count from the end of the axis.
    let idx = cast_to(ctx, &idx, DType::I64, "indices")?;
    let zero = scalar(ctx, "zero", 0.0, DType::I64)?;
    let len = scalar(ctx, "axis_len", shape[a] as f64, DType::I64)?;
    let s = ctx.tmp("Less", "negative").input(&idx).input(&zero);
    let negative = ctx.emit1(s)?;
    let s = ctx.tmp("Add", "from_end").input(&idx).input(&len);
    let from_end = ctx.emit1(s)?;
    let s = ctx
        .tmp("Where", "index")
        .input(&negative)
        .input(&from_end)
        .input(&idx);
    let mut flat = ctx.emit1(s)?;
    flat = times(ctx, &flat, strides[a], &format!("axis{a}"))?;

    // The other axes' coordinates: arange(n) along axis k, 1 elsewhere.
    for k in (0..rank).filter(|&k| k != a && ishape[k] != 1) {
        let s = ctx
            .tmp("Range", &format!("coord{k}"))
            .int("start", 0)
            .int("limit", ishape[k])
            .int("delta", 1);
        let coord = ctx.emit1(s)?;
        let others: Vec<i64> = (0..rank as i64).filter(|&j| j != k as i64).collect();
        let coord = if others.is_empty() {
            coord
        } else {
            let s = ctx
                .tmp("Unsqueeze", &format!("coord{k}_axes"))
                .ints("axes", others)
                .input(&coord);
            ctx.emit1(s)?
        };
        let term = times(ctx, &coord, strides[k], &format!("axis{k}"))?;
        let s = ctx
            .tmp("Add", &format!("flat{k}"))
            .input(&flat)
            .input(&term);
        flat = ctx.emit1(s)?;
    }

    let s = ctx
        .tmp("Reshape", "flat_data")
        .ints("shape", vec![-1])
        .input(&data);
    let flat_data = ctx.emit1(s)?;
    let s = ctx
        .spec("Gather")
        .int("axis", 0)
        .input(&flat_data)
        .input(&flat);
    Ok(vec![ctx.emit1(s)?])
}

/// `v · k` (nothing when k is 1).
fn times(ctx: &mut Ctx, v: &Val, k: i64, suffix: &str) -> Result<Val> {
    if k == 1 {
        return Ok(v.clone());
    }
    let f = scalar(ctx, &format!("stride_{suffix}"), k as f64, DType::I64)?;
    let s = ctx
        .tmp("Mul", &format!("scaled_{suffix}"))
        .input(v)
        .input(&f);
    ctx.emit1(s)
}
