//! Windowed and global pooling, 1-d to 3-d, both data formats.
//!
//! Pads are explicit or `auto_pad`'s SAME padding of the input's sizes. MAX considers only taps
//! inside the input (padding never wins). AVG divides by the number of
//! taps inside the input, or with `count_include_pad` by the taps inside the padded input
//! (input plus explicit pads; the extra cells a ceil-mode window reaches beyond the end padding
//! are never counted, as in PyTorch and ONNX).
use super::util::{from_ncdhw, one, pad3, par_chunks, to_ncdhw};
use super::{OpCtx, OpFn, Value};
use crate::ir::ops::resolved_pads;
use crate::ir::ops::shape_rules::{spatial_list, split_pads, window_out};
use anyhow::{bail, Result};
use ndarray::{ArrayD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Pool" => pool,
        "GlobalPool" => global_pool,
        _ => return None,
    })
}

/// Integer max pooling runs in f32, exact for values of at most 24 bits (uint8, int8, ...).
fn pool(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?;
    let Value::I64(xi) = &x else {
        return pool_f32(ctx, x.into_f32()?);
    };
    if ctx.attrs.str("pooling_type")? != "MAX" || xi.iter().any(|v| v.abs() > 1 << 24) {
        bail!(
            "cannot pool {} (only MAX of integers up to 2^24)",
            x.describe()
        );
    }
    let y = pool_f32(ctx, x.to_f32())?;
    Ok(vec![Value::I64(one(y)?.as_f32()?.mapv(|v| v as i64))])
}

fn pool_f32(ctx: &OpCtx, x: ArrayD<f32>) -> Result<Vec<Value>> {
    let cl = ctx.attrs.channels_last()?;
    let (x5, ns) = to_ncdhw(x, cl)?;
    let a = &ctx.attrs;
    let is_max = a.str("pooling_type")? == "MAX";
    let kernel = a.ints("kernel_shape")?;
    if kernel.len() != ns || kernel.iter().any(|&k| k <= 0) {
        bail!("kernel_shape {kernel:?} does not fit {ns} spatial axes");
    }
    let strides = spatial_list(a.ints("strides")?, ns, 1, "strides")?;
    let dilations = spatial_list(a.ints("dilations")?, ns, 1, "dilations")?;
    if strides.iter().chain(&dilations).any(|&v| v <= 0) {
        bail!("strides and dilations must be positive");
    }
    let sh = x5.shape();
    let sizes: Vec<i64> = sh[5 - ns..].iter().map(|&v| v as i64).collect();
    let (pb, pe) = split_pads(resolved_pads(a, &sizes)?, ns)?;
    let ceil = a.bool("ceil_mode")?;
    let include_pad = a.bool("count_include_pad")?;
    let (k, s, d) = (pad3(&kernel, 1), pad3(&strides, 1), pad3(&dilations, 1));
    let (pb, pe) = (pad3(&pb, 0), pad3(&pe, 0));
    let (n, c) = (sh[0], sh[1]);
    let ins = [sh[2], sh[3], sh[4]];
    let mut outs = [0usize; 3];
    for i in 0..3 {
        outs[i] = window_out(ins[i] as i64, k[i], s[i], d[i], pb[i], pe[i], ceil)?.max(0) as usize;
    }
    let p_in: usize = ins.iter().product();
    let p_out: usize = outs.iter().product();
    let xs = x5.as_slice().expect("standard layout");
    // Per axis and output index: the input positions of the taps, None for padding, and the
    // number of taps inside the padded input.
    let taps: Vec<Vec<(Vec<Option<usize>>, usize)>> = (0..3)
        .map(|a| {
            (0..outs[a])
                .map(|o| {
                    let start = o as i64 * s[a] - pb[a];
                    let mut pos = Vec::new();
                    let mut padded = 0;
                    for t in 0..k[a] {
                        let p = start + t * d[a];
                        if p >= -pb[a] && p < ins[a] as i64 + pe[a] {
                            padded += 1;
                        }
                        pos.push((p >= 0 && p < ins[a] as i64).then_some(p as usize));
                    }
                    (pos, padded)
                })
                .collect()
        })
        .collect();
    let mut y = vec![0f32; n * c * p_out];
    par_chunks(
        &mut y,
        p_out.max(1),
        n * c * p_out * (k.iter().product::<i64>() as usize),
        |first, planes| {
            if p_out == 0 {
                return;
            }
            for (j, out) in planes.chunks_mut(p_out).enumerate() {
                let plane = &xs[(first + j) * p_in..(first + j + 1) * p_in];
                let mut q = 0;
                for (td, nd) in &taps[0] {
                    for (th, nh) in &taps[1] {
                        for (tw, nw) in &taps[2] {
                            let mut acc = if is_max { f32::NEG_INFINITY } else { 0.0 };
                            let mut count = 0usize;
                            for zd in td.iter().flatten() {
                                for zh in th.iter().flatten() {
                                    let row = &plane[(zd * ins[1] + zh) * ins[2]..];
                                    for &zw in tw.iter().flatten() {
                                        let v = row[zw];
                                        if is_max {
                                            // NaN propagates, as in NumPy's max.
                                            if v > acc || v.is_nan() {
                                                acc = v;
                                            }
                                        } else {
                                            acc += v;
                                        }
                                        count += 1;
                                    }
                                }
                            }
                            if !is_max {
                                let div = if include_pad { nd * nh * nw } else { count };
                                acc /= div as f32;
                            }
                            out[q] = acc;
                            q += 1;
                        }
                    }
                }
            }
        },
    );
    let y = ArrayD::from_shape_vec(IxDyn(&[n, c, outs[0], outs[1], outs[2]]), y)?;
    Ok(vec![Value::F32(from_ncdhw(y, ns, cl))])
}

fn global_pool(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    let rank = x.ndim();
    if rank < 3 {
        bail!(
            "expects an input of rank 3 or more, got shape {:?}",
            x.shape()
        );
    }
    let cl = ctx.attrs.channels_last()?;
    let is_max = ctx.attrs.str("pooling_type")? == "MAX";
    let keep = ctx.attrs.bool("keepdims")?;
    let (c_axis, spatial) = crate::ir::ops::shape_rules::spatial_axes(rank, cl);
    // Move channels next to the batch, flatten spatial axes last.
    let mut perm = vec![0, c_axis];
    perm.extend(&spatial);
    let moved = x.view().permuted_axes(IxDyn(&perm));
    let (n, c) = (x.shape()[0], x.shape()[c_axis]);
    let p: usize = spatial.iter().map(|&a| x.shape()[a]).product();
    let std = moved.as_standard_layout();
    let xs = std.as_slice().expect("standard layout");
    let vals: Vec<f32> = (0..n * c)
        .map(|i| {
            let plane = &xs[i * p..(i + 1) * p];
            if is_max {
                plane.iter().fold(
                    f32::NEG_INFINITY,
                    |m, &v| {
                        if v > m || v.is_nan() {
                            v
                        } else {
                            m
                        }
                    },
                )
            } else {
                (plane.iter().map(|&v| v as f64).sum::<f64>() / p as f64) as f32
            }
        })
        .collect();
    let shape: Vec<usize> = if keep {
        (0..rank)
            .map(|a| {
                if a == 0 {
                    n
                } else if a == c_axis {
                    c
                } else {
                    1
                }
            })
            .collect()
    } else {
        vec![n, c]
    };
    Ok(vec![Value::F32(ArrayD::from_shape_vec(
        IxDyn(&shape),
        vals,
    )?)])
}
