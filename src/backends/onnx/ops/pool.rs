//! Pooling. The layout pass has made it channels-first, which is ONNX's layout, and `pads` are
//! ONNX's `[begins…, ends…]`; `auto_pad` same_* is ONNX's SAME_* (see conv's `padding`).
use super::conv::{padding, run_time_ones, Padding};
use super::{channels_first, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::ops::shape_rules::{spatial_list, split_pads};
use anyhow::{bail, Result};

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "Pool" => pool,
        "GlobalPool" => global_pool,
        _ => return None,
    })
}

fn pool(c: &mut Ctx) -> Result<()> {
    channels_first(c)?;
    let max = c.a.str("pooling_type")? == "MAX";
    let kernel = c.a.ints("kernel_shape")?;
    let n = kernel.len();
    let strides = spatial_list(c.a.ints("strides")?, n, 1, "strides")?;
    let dilations = spatial_list(c.a.ints("dilations")?, n, 1, "dilations")?;
    let (auto_pad, pads, run_time) = match padding(c, true)? {
        Padding::Explicit(pads) => (None, pads, None),
        Padding::Auto(a) => (Some(a), vec![], None),
        Padding::RunTime(p) => (None, vec![], Some(p)),
    };
    let (mut begin, mut end) = split_pads(pads, n)?;
    let ceil = c.a.bool("ceil_mode")?;
    let count_pad = c.a.bool("count_include_pad")?;
    let (x_ty, y_ty) = (c.in_ty(0)?, c.out_ty(0)?);
    let mut x = c.x(0)?;
    let known = x_ty.shape[2..]
        .iter()
        .chain(&y_ty.shape[2..])
        .all(|&d| d >= 0);
    let cropped = ceil
        && known
        && (0..n).any(|i| {
            let eff = dilations[i] * (kernel[i] - 1) + 1;
            let padded = x_ty.shape[2 + i] + begin[i] + end[i];
            (padded - eff + strides[i] - 1) / strides[i] + 1 != y_ty.shape[2 + i]
        });
    // Runtimes refuse pads as large as the kernel: pad explicitly first (MAX with −inf, which
    // never wins; AVG counting padding with zeros).
    // An average not counting padding is then avg(padded x) / avg(padded mask of the input).
    // SAME pads onnxruntime gets wrong, computed in the graph, are applied the same way.
    let mut mask = None;
    if run_time.is_some() || (0..n).any(|i| begin[i] >= kernel[i] || end[i] >= kernel[i]) {
        if !max && !count_pad {
            let dims: Vec<i64> = [1, 1]
                .into_iter()
                .chain(x_ty.shape[2..].iter().copied())
                .collect();
            mask = Some(if dims.iter().any(|&d| d < 0) {
                run_time_ones(c)?
            } else {
                let ones = vec![1.0; dims.iter().product::<i64>() as usize];
                c.consts("input_mask", x_ty.dtype, dims, &ones)?
            });
        }
        let mut pads = vec![0, 0];
        pads.extend(&begin);
        pads.extend([0, 0]);
        pads.extend(&end);
        let p = match run_time {
            Some(p) => p,
            None => c.ints("explicit_pads", &pads),
        };
        let fill = if max { f64::NEG_INFINITY } else { 0.0 };
        let v = c.scalar("pad_value", x_ty.dtype, fill)?;
        x = c.op("Pad", &[&x, &p, &v], vec![]);
        if let Some(m) = &mask {
            mask = Some(c.op("Pad", &[m, &p, &v], vec![]));
        }
        begin = vec![0; n];
        end = vec![0; n];
    }
    let mut attrs = vec![
        A::Is("kernel_shape", kernel.clone()),
        A::I("ceil_mode", ceil as i64),
        A::Is("strides", strides.clone()),
    ];
    match auto_pad {
        Some(auto_pad) => attrs.push(auto_pad),
        None => attrs.push(A::Is("pads", begin.iter().chain(&end).copied().collect())),
    }
    if dilations.iter().any(|&d| d != 1) {
        if !max && c.opset() < 19 {
            bail!("average pooling with dilations needs opset 19 or later");
        }
        attrs.push(A::Is("dilations", dilations.clone()));
    }
    if !max {
        attrs.push(A::I("count_include_pad", count_pad as i64));
    }
    let op = if max { "MaxPool" } else { "AveragePool" };
    if let Some(m) = mask {
        let attrs2 = attrs.iter().map(A::clone).collect();
        let s = c.op(op, &[&x], attrs);
        let k = c.op(op, &[&m], attrs2);
        let d = c.op("Div", &[&s, &k], vec![]);
        return crop(c, &d, y_ty, ("Identity", vec![]), cropped);
    }
    crop(c, &x, y_ty, (op, attrs), cropped)
}

/// Emits `op(x)` as the node's output; when `cropped` (ceil mode: the IR, like PyTorch, drops
/// a window that would start in the end padding, ONNX keeps it), cut to the IR's spatial size.
fn crop(
    c: &mut Ctx,
    x: &str,
    y_ty: &crate::ir::TensorType,
    (op, attrs): (&str, Vec<A>),
    cropped: bool,
) -> Result<()> {
    let want = &y_ty.shape[2..];
    let n = want.len();
    if cropped {
        let p = c.op(op, &[x], attrs);
        let starts = c.ints("crop_starts", &vec![0; n]);
        let ends = c.ints("crop_ends", want);
        let axes = c.ints("crop_axes", &(2..2 + n as i64).collect::<Vec<_>>());
        return c.last("Slice", &[&p, &starts, &ends, &axes], vec![]);
    }
    c.last(op, &[x], attrs)
}

fn global_pool(c: &mut Ctx) -> Result<()> {
    channels_first(c)?;
    let op = if c.a.str("pooling_type")? == "MAX" {
        "GlobalMaxPool"
    } else {
        "GlobalAveragePool"
    };
    let x = c.x(0)?;
    if c.a.bool("keepdims")? {
        return c.last(op, &[&x], vec![]);
    }
    let p = c.op(op, &[&x], vec![]);
    c.last("Flatten", &[&p], vec![A::I("axis", 1)])
}
