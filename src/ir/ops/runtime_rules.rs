//! Shape rules of the ops whose shape-like attributes are tensors computed at run time (see
//! [`super::FROM_INPUTS`]): the output's rank follows from the tensor's length, its dims are
//! unknown (-1) except where the op keeps them whatever the value.
use super::shape_rules::norm_axis;
use super::*;

/// The type of input 0 and the length of the run-time list `attr`, which must be 1-d.
fn x_and_len<'a>(ctx: &'a InferCtx, attr: &str) -> Result<(&'a TensorType, usize)> {
    let x = ctx.input(0)?;
    let n = ctx
        .runtime_len(attr)?
        .ok_or_else(|| anyhow!("'{attr}' is not a run-time tensor"))?;
    Ok((x, n))
}

/// Reshape to a run-time shape: as many dims as the shape has entries.
pub fn reshape(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "shape")?;
    Ok(vec![TensorType::new(x.dtype, vec![-1; n])])
}

/// Expand to a run-time shape (NumPy broadcasting both ways): a known dim other than 1 stays.
pub fn expand(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "shape")?;
    let rank = n.max(x.rank());
    let shape = (0..rank)
        .map(|i| match (i + x.rank()).checked_sub(rank) {
            Some(j) if x.shape[j] >= 0 && x.shape[j] != 1 => x.shape[j],
            _ => -1,
        })
        .collect();
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Tile by run-time repeats: the rank is kept; an empty axis stays empty.
pub fn tile(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "repeats")?;
    if n != x.rank() {
        bail!("repeats has {n} entries; {x} needs {}", x.rank());
    }
    let shape = x
        .shape
        .iter()
        .map(|&d| if d == 0 { 0 } else { -1 })
        .collect();
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Pad by run-time amounts: the rank is kept.
pub fn pad(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "pads")?;
    if n != 2 * x.rank() {
        bail!("pads has {n} entries; {x} needs {}", 2 * x.rank());
    }
    Ok(vec![TensorType::new(x.dtype, vec![-1; x.rank()])])
}

/// Slice with some of starts/ends/axes/steps at run time: the sliced axes become unknown
/// (every axis when the axes themselves are run-time).
pub fn slice(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let mut lens = vec![];
    for a in ["starts", "ends", "axes", "steps"] {
        if let Some(n) = ctx.runtime_len(a)? {
            lens.push(n);
        } else if let Some(v) = ctx.attrs.opt_ints(a)? {
            lens.push(v.len());
        }
    }
    if lens.windows(2).any(|w| w[0] != w[1]) {
        bail!("starts, ends, axes and steps differ in length ({lens:?})");
    }
    let mut shape = x.shape.clone();
    if ctx.runtime("axes").is_some() {
        shape.iter_mut().for_each(|d| *d = -1);
    } else if let Some(axes) = ctx.attrs.opt_ints("axes")? {
        for a in axes {
            shape[norm_axis(a, x.rank())?] = -1;
        }
    } else {
        shape
            .iter_mut()
            .take(lens.first().copied().unwrap_or(0))
            .for_each(|d| *d = -1);
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Split into run-time sizes: one output per entry, the split axis unknown in each.
pub fn split(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "split")?;
    let axis = norm_axis(ctx.attrs.int("axis")?, x.rank())?;
    let mut shape = x.shape.clone();
    shape[axis] = -1;
    Ok(vec![TensorType::new(x.dtype, shape); n])
}

/// Squeeze run-time axes: one dim fewer per axis.
pub fn squeeze(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "axes")?;
    let rank = x
        .rank()
        .checked_sub(n)
        .ok_or_else(|| anyhow!("{n} axes squeezed from {x}"))?;
    Ok(vec![TensorType::new(x.dtype, vec![-1; rank])])
}

/// Unsqueeze at run-time axes: one dim more per axis.
pub fn unsqueeze(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "axes")?;
    Ok(vec![TensorType::new(x.dtype, vec![-1; x.rank() + n])])
}

/// Reduce over run-time axes (empty: all): the rank is kept with `keepdims`, else one dim
/// fewer per axis.
pub fn reduce(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (x, n) = x_and_len(ctx, "axes")?;
    let keep = ctx.attrs.bool("keepdims")?;
    if n == 0 {
        let rank = if keep { x.rank() } else { 0 };
        return Ok(vec![TensorType::new(x.dtype, vec![1; rank])]);
    }
    let rank = if keep {
        x.rank()
    } else {
        x.rank()
            .checked_sub(n)
            .ok_or_else(|| anyhow!("{n} axes reduced in {x}"))?
    };
    Ok(vec![TensorType::new(x.dtype, vec![-1; rank])])
}

/// Range with run-time bounds: a 1-d int64 tensor of unknown length.
pub fn range(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    for a in ["start", "limit", "delta"] {
        if let Some(t) = ctx.runtime(a) {
            if t.rank() > 1 || t.shape.first().is_some_and(|&d| d != 1) {
                bail!("'{a}' is given by a tensor of type {t}; a scalar is needed");
            }
        }
    }
    Ok(vec![TensorType::new(DType::I64, vec![-1])])
}

/// Resize to run-time sizes or by run-time scales: the spatial axes become unknown.
pub fn resize(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    if x.rank() < 3 {
        bail!("expects an input of rank 3 or more, got {x}");
    }
    let (_, spatial) = shape_rules::spatial_axes(x.rank(), ctx.attrs.channels_last()?);
    let attr = if ctx.runtime("sizes").is_some() {
        "sizes"
    } else {
        "scales"
    };
    if ctx.runtime_len(attr)? != Some(spatial.len()) {
        bail!("'{attr}' must have one entry per spatial axis of {x}");
    }
    let mut shape = x.shape.clone();
    for a in spatial {
        shape[a] = -1;
    }
    Ok(vec![TensorType::new(x.dtype, shape)])
}
