//! Shape arithmetic shared by the ops' shape rules (and by the interpreter).
use super::InferCtx;
use crate::ir::dim;
use crate::ir::types::{DType, Shape, TensorType};
use anyhow::{anyhow, bail, Result};

/// `a + b` for dims and sizes: an error instead of a wrapped value. Symbolic dims give their
/// sum (with an unknown one: unknown); other values add as integers.
pub fn dim_add(a: i64, b: i64) -> Result<i64> {
    if dim::is_symbolic(a) || dim::is_symbolic(b) {
        return dim::add(a, b);
    }
    a.checked_add(b)
        .ok_or_else(|| anyhow!("size {a} + {b} overflows"))
}

/// `a * b` for dims and sizes: an error instead of a wrapped value. Symbolic dims give their
/// product; other values multiply as integers.
pub fn dim_mul(a: i64, b: i64) -> Result<i64> {
    if dim::is_symbolic(a) || dim::is_symbolic(b) {
        return dim::mul(a, b);
    }
    a.checked_mul(b)
        .ok_or_else(|| anyhow!("size {a} × {b} overflows"))
}

/// The one dim two dims that must be equal stand for: a size over a symbol, a symbol over an
/// unknown; two different sizes are an error. (Two different symbols must be equal at run time;
/// the first is kept.)
pub fn unify(a: i64, b: i64) -> Result<i64> {
    Ok(match (a, b) {
        _ if a == b => a,
        (x, y) if x >= 0 && y >= 0 => bail!("{x} ≠ {y}"),
        (x, _) if x >= 0 => x,
        (_, y) if y >= 0 => y,
        (x, y) if x == dim::UNKNOWN => y,
        (x, _) => x,
    })
}

/// Normalises `axis` (negative counts from the end) against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    Ok(a as usize)
}

/// NumPy broadcasting of two shapes; unknown (-1) dims broadcast against anything.
pub fn broadcast(a: &[i64], b: &[i64]) -> Result<Shape> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            // One side not known now: a size above 1 is the result (the other is 1 or equal);
            // two different symbols, or an unknown, could be either.
            (x, y) if x < 0 && y < 0 => -1,
            (x, y) if x < 0 || y < 0 => x.max(y),
            (x, y) => bail!(
                "shapes {} and {} do not broadcast (dim {x} vs {y})",
                crate::ir::types::shape_string(a),
                crate::ir::types::shape_string(b)
            ),
        };
    }
    Ok(out)
}

/// Output size of a sliding window over one spatial axis (an expression of a symbolic size,
/// -1 for an unknown one). Fails when the window, dilated, is larger than the padded input
/// (there would be no output position). The geometry itself is checked by [`check_window`].
pub fn window_out(
    size: i64,
    kernel: i64,
    stride: i64,
    dilation: i64,
    pad_begin: i64,
    pad_end: i64,
    ceil_mode: bool,
) -> Result<i64> {
    // check_window keeps every term below 2^31, so these products and sums fit an i64.
    let effective = dilation * (kernel - 1) + 1;
    if size < 0 {
        // (size + pads - effective) // stride + 1, rounded up in ceil mode. Ceil mode's
        // correction (a last window starting in the end padding is dropped) can only apply
        // when pad_end + stride > effective; then the size is not known in general.
        if ceil_mode && pad_end + stride > effective {
            return Ok(dim::UNKNOWN);
        }
        let span = dim::sub(dim::add(size, pad_begin + pad_end)?, effective)?;
        let steps = if ceil_mode {
            dim::ceil_div(span, stride)?
        } else {
            dim::floor_div(span, stride)?
        };
        return dim::add(steps, 1);
    }
    let padded = size + pad_begin + pad_end;
    let span = padded - effective;
    if span < 0 {
        bail!(
            "the window ({kernel} with dilation {dilation}: {effective} wide) is larger than the \
             padded input ({size} + {pad_begin} + {pad_end} = {padded})"
        );
    }
    let mut out = if ceil_mode {
        (span + stride - 1) / stride + 1
    } else {
        span / stride + 1
    };
    // A window must start inside the input or the begin padding (PyTorch/ONNX rule).
    if ceil_mode && (out - 1) * stride >= size + pad_begin {
        out -= 1;
    }
    Ok(out)
}

/// The largest kernel, stride, dilation or pad a window may have (2^31 - 1): larger values
/// are no real model's, and bounding them keeps the geometry's arithmetic from overflowing.
pub const MAX_WINDOW: i64 = i32::MAX as i64;

/// Checks a window's geometry: kernel sizes, strides and dilations at least 1, pads at least
/// 0, none above [`MAX_WINDOW`].
pub fn check_window(
    kernel: &[i64],
    strides: &[i64],
    dilations: &[i64],
    pads: &[i64],
) -> Result<()> {
    for (name, values, least) in [
        ("kernel_shape", kernel, 1),
        ("strides", strides, 1),
        ("dilations", dilations, 1),
        ("pads", pads, 0),
    ] {
        if let Some(v) = values.iter().find(|&&v| v < least || v > MAX_WINDOW) {
            bail!("{name} {values:?}: {v} is not between {least} and {MAX_WINDOW}");
        }
    }
    Ok(())
}

/// Product of dims: symbolic when a dim is, -1 when one is unknown.
pub fn dims_product(shape: &[i64]) -> Result<i64> {
    shape.iter().try_fold(1, |n, &d| dim::mul(n, d))
}

/// Number of elements, -1 if any dim is not known now; saturates at `i64::MAX` (validation
/// refuses such a shape, so the product never wraps to a small, wrong count).
pub fn numel(shape: &[i64]) -> i64 {
    if shape.iter().any(|&d| d < 0) {
        -1
    } else {
        shape.iter().fold(1i64, |n, &d| n.saturating_mul(d))
    }
}

/// Total SAME padding of one spatial axis of size `size` (`size` < 0: unknown, then only a
/// stride of 1 gives an answer): the output has ceil(size / stride) positions.
/// `None` too for a geometry [`check_window`] refuses (a stride below 1, sizes that overflow).
pub fn same_pad_total(size: i64, kernel: i64, stride: i64, dilation: i64) -> Option<i64> {
    let span = dilation
        .checked_mul(kernel.checked_sub(1)?)?
        .checked_add(1)?;
    if stride == 1 {
        return Some(span - 1);
    }
    if size < 0 || stride < 1 {
        return None;
    }
    let out = size.checked_add(stride - 1)? / stride;
    Some(((out - 1).checked_mul(stride)?.checked_add(span)? - size).max(0))
}

/// Splits a total padding into (begin, end): SAME_UPPER / TensorFlow put the odd pixel at the
/// end, SAME_LOWER at the begin.
pub fn split_same(total: i64, odd_at_end: bool) -> (i64, i64) {
    let small = total / 2;
    if odd_at_end {
        (small, total - small)
    } else {
        (total - small, small)
    }
}

/// SAME pads `[begin per axis..., end per axis...]` for spatial sizes `sizes`; `None` when a
/// strided axis has an unknown size.
pub fn same_pads(
    sizes: &[i64],
    kernel: &[i64],
    strides: &[i64],
    dilations: &[i64],
    odd_at_end: bool,
) -> Option<Vec<i64>> {
    let mut begin = Vec::with_capacity(sizes.len());
    let mut end = Vec::with_capacity(sizes.len());
    for i in 0..sizes.len() {
        let total = same_pad_total(sizes[i], kernel[i], strides[i], dilations[i])?;
        let (b, e) = split_same(total, odd_at_end);
        begin.push(b);
        end.push(e);
    }
    begin.extend(end);
    Some(begin)
}

/// Resolves a Reshape target against an input shape (0 copies, one -1 inferred). Symbolic dims
/// take part: `[N, S, 768]` into `[0, 0, 12, 64]` or `[-1, 768]` gives `[N, S, 12, 64]` and
/// `[N*S, 768]`; a -1 that cannot be shown to be a whole quotient stays unknown.
pub fn reshape_dims(input: &[i64], target: &[i64]) -> Result<Vec<i64>> {
    let mut out: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 {
                input.get(i).copied().ok_or_else(|| {
                    anyhow!(
                        "shape entry {i} is 0 (copy) but the input has rank {}",
                        input.len()
                    )
                })
            } else {
                Ok(d)
            }
        })
        .collect::<Result<_>>()?;
    let infer: Vec<usize> = (0..target.len()).filter(|&i| target[i] == -1).collect();
    if infer.len() > 1 {
        bail!("the target shape has more than one -1");
    }
    let total = dims_product(input)?;
    if let [i] = infer[..] {
        let known = (0..out.len())
            .filter(|&j| j != i)
            .try_fold(1, |n, j| dim::mul(n, out[j]))?;
        if total >= 0 && known > 0 {
            if total % known != 0 {
                bail!("cannot reshape {} elements into {:?}", total, target);
            }
            out[i] = total / known;
        } else if known != 0 && total != dim::UNKNOWN && known != dim::UNKNOWN {
            out[i] = dim::exact_div(total, known).unwrap_or(dim::UNKNOWN);
        }
    } else if let Some(k) = symbolic_ratio(total, &out)? {
        bail!(
            "cannot reshape {} into {}: the target has 1/{k} of its elements",
            crate::ir::types::shape_string(input),
            crate::ir::types::shape_string(&out)
        );
    } else if total >= 0 && numel(&out) >= 0 && numel(&out) != total {
        bail!(
            "cannot reshape {} ({} elements) into {:?}",
            crate::ir::types::shape_string(input),
            total,
            target
        );
    }
    Ok(out)
}

/// For symbolic element counts: the constant ratio (not 1) between the input's count and a
/// target's, when there is one (`[N, 3, 4]` into `[3, N]`: 4). `None` when they are equal or not
/// comparable.
fn symbolic_ratio(total: i64, target: &[i64]) -> Result<Option<i64>> {
    if !dim::is_symbolic(total) {
        return Ok(None);
    }
    let product = dims_product(target)?;
    if product == dim::UNKNOWN || product == 0 {
        return Ok(None);
    }
    Ok(dim::exact_div(total, product).filter(|&k| k >= 0 && k != 1))
}

/// Range's (start, limit, delta); a delta of 0 is an error.
pub fn range_bounds(attrs: &super::Attrs) -> Result<(i64, i64, i64)> {
    let delta = attrs.int("delta")?;
    if delta == 0 {
        bail!("delta is 0");
    }
    Ok((attrs.int("start")?, attrs.int("limit")?, delta))
}

/// max(ceil((limit − start) / delta), 0) for known bounds, without overflow.
pub fn range_len(start: i64, limit: i64, delta: i64) -> Result<i64> {
    let span = (limit as i128 - start as i128).max(0);
    let span = if delta < 0 {
        (start as i128 - limit as i128).max(0)
    } else {
        span
    };
    let step = (delta as i128).abs();
    i64::try_from((span + step - 1) / step).map_err(|_| anyhow!("Range has too many values"))
}

/// Splits an activation shape into (channel axis, spatial axes) by data format.
pub fn spatial_axes(rank: usize, channels_last: bool) -> (usize, Vec<usize>) {
    if channels_last {
        (rank - 1, (1..rank - 1).collect())
    } else {
        (1, (2..rank).collect())
    }
}

/// A spatial attribute list, or `fill` repeated when empty.
pub fn spatial_list(values: Vec<i64>, n: usize, fill: i64, name: &str) -> Result<Vec<i64>> {
    if values.is_empty() {
        return Ok(vec![fill; n]);
    }
    if values.len() != n {
        bail!(
            "'{name}' has {} values but the op has {n} spatial axes",
            values.len()
        );
    }
    Ok(values)
}

/// Begin/end pads per spatial axis from a `pads` list ([begins..., ends...] or empty).
pub fn split_pads(pads: Vec<i64>, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    if pads.is_empty() {
        return Ok((vec![0; n], vec![0; n]));
    }
    if pads.len() != 2 * n {
        bail!(
            "'pads' has {} values; expected {} (begin and end for each of {n} spatial axes)",
            pads.len(),
            2 * n
        );
    }
    Ok((pads[..n].to_vec(), pads[n..].to_vec()))
}

/// Rule: one output with the input's type.
pub fn same_as_input(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    Ok(vec![ctx.input(0)?.clone()])
}

/// Rule: one output, the broadcast of all inputs, dtype of the first.
pub fn broadcast_inputs(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let first = ctx.input(0)?;
    let mut shape = first.shape.clone();
    for t in &ctx.inputs[1..] {
        shape = broadcast(&shape, &t.shape)?;
    }
    Ok(vec![TensorType::new(first.dtype, shape)])
}

/// Rule: broadcast of the inputs, bool result (comparisons).
pub fn broadcast_bool(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let mut out = broadcast_inputs(ctx)?;
    out[0].dtype = DType::Bool;
    Ok(out)
}
