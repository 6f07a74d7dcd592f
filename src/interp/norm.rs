//! Normalization layers. Statistics are computed in f64 (two-pass variance, population
//! variance as every framework uses at inference).
use super::util::{axis, map_lanes, one, par_chunks};
use super::{OpCtx, OpFn, Value};
use anyhow::{bail, Result};
use ndarray::{ArrayD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "BatchNorm" => batch_norm,
        "LayerNorm" => layer_norm,
        "GroupNorm" => group_norm,
        "InstanceNorm" => instance_norm,
        "LRN" => lrn,
        "LpNormalize" => lp_normalize,
        _ => return None,
    })
}

/// A per-channel f32 weight of length `c`, or `fill` when absent.
fn channel_weight(ctx: &OpCtx, name: &str, flag: &str, c: usize, fill: f32) -> Result<Vec<f32>> {
    match ctx.flagged_weight(name, flag)? {
        Some(w) => {
            let a = w.as_f32()?;
            if a.len() != c || a.ndim() != 1 {
                bail!("weight '{name}' has shape {:?}; expected [{c}]", a.shape());
            }
            Ok(a.iter().copied().collect())
        }
        None => Ok(vec![fill; c]),
    }
}

/// Applies `y = x · mul[c] + add[c]` along channel axis `ax`, in place.
fn per_channel_affine(x: &mut ArrayD<f32>, ax: usize, mul: &[f32], add: &[f32]) {
    let shape = x.shape().to_vec();
    let inner: usize = shape[ax + 1..].iter().product();
    let c = shape[ax];
    if let (Some(s), 1) = (x.as_slice_mut(), inner) {
        // Channels last: rows of c.
        let work = s.len();
        par_chunks(s, c.max(1), work, |_, chunk| {
            for row in chunk.chunks_mut(c.max(1)) {
                for ((v, m), a) in row.iter_mut().zip(mul).zip(add) {
                    *v = *v * m + a;
                }
            }
        });
    } else if let Some(s) = x.as_slice_mut() {
        let work = s.len();
        par_chunks(s, inner.max(1), work, |first, chunk| {
            for (j, block) in chunk.chunks_mut(inner.max(1)).enumerate() {
                let ch = (first + j) % c;
                let (m, a) = (mul[ch], add[ch]);
                block.iter_mut().for_each(|v| *v = *v * m + a);
            }
        });
    } else {
        for (idx, v) in x.indexed_iter_mut() {
            let ch = idx[ax];
            *v = *v * mul[ch] + add[ch];
        }
    }
}

fn batch_norm(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let mut x = one(inputs)?.into_f32()?;
    let ax = axis(ctx.attrs.int("axis")?, x.ndim())?;
    let c = x.shape()[ax];
    let eps = ctx.attrs.float("epsilon")?;
    let mean = ctx.weight_f32("mean", &[c])?;
    let var = ctx.weight_f32("var", &[c])?;
    let scale = channel_weight(ctx, "scale", "use_scale", c, 1.0)?;
    let bias = channel_weight(ctx, "bias", "use_bias", c, 0.0)?;
    let (mean, var) = (mean.as_f32()?, var.as_f32()?);
    let mut mul = vec![0f32; c];
    let mut add = vec![0f32; c];
    for i in 0..c {
        let inv = 1.0 / (var[i] as f64 + eps as f64).sqrt();
        mul[i] = (scale[i] as f64 * inv) as f32;
        add[i] = (bias[i] as f64 - mean[i] as f64 * scale[i] as f64 * inv) as f32;
    }
    per_channel_affine(&mut x, ax, &mul, &add);
    Ok(vec![Value::F32(x)])
}

/// Mean and inverse standard deviation of a slice.
fn stats(v: &[f32], eps: f32) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps as f64).sqrt())
}

fn layer_norm(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    let rank = x.ndim();
    let mut axes = ctx
        .attrs
        .ints("axes")?
        .iter()
        .map(|&a| axis(a, rank))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    let eps = ctx.attrs.float("epsilon")?;
    let norm_shape: Vec<usize> = axes.iter().map(|&a| x.shape()[a]).collect();
    let len: usize = norm_shape.iter().product();
    let affine = |name: &str, flag: &str| -> Result<Option<Vec<f32>>> {
        Ok(match ctx.flagged_weight(name, flag)? {
            Some(w) => {
                let a = w.as_f32()?;
                if a.shape() != norm_shape.as_slice() {
                    bail!(
                        "weight '{name}' has shape {:?}; expected {norm_shape:?}",
                        a.shape()
                    );
                }
                Some(a.iter().copied().collect())
            }
            None => None,
        })
    };
    let scale = affine("scale", "use_scale")?;
    let bias = affine("bias", "use_bias")?;
    let mut perm: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
    let kept = perm.len();
    perm.extend(&axes);
    let moved = x.view().permuted_axes(IxDyn(&perm));
    let moved_shape = moved.shape().to_vec();
    let flat = moved
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(&[moved_shape[..kept].iter().product(), len]))?;
    let y = map_lanes(flat.view(), 1, len, |src, dst| {
        let (mean, inv) = stats(src, eps);
        for (i, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
            let mut v = ((s as f64 - mean) * inv) as f32;
            if let Some(sc) = &scale {
                v *= sc[i];
            }
            if let Some(b) = &bias {
                v += b[i];
            }
            *d = v;
        }
    });
    let y = y.into_shape_with_order(IxDyn(&moved_shape))?;
    let mut inv = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    Ok(vec![Value::F32(
        y.permuted_axes(IxDyn(&inv))
            .as_standard_layout()
            .into_owned(),
    )])
}

/// Normalises groups of channels of each sample over the group's channels and all axes other
/// than the batch (0) and the channel axis.
fn grouped(ctx: &OpCtx, x: ArrayD<f32>, groups: Option<usize>) -> Result<ArrayD<f32>> {
    let rank = x.ndim();
    if rank < 2 {
        bail!(
            "expects an input of rank 2 or more, got shape {:?}",
            x.shape()
        );
    }
    let ax = axis(ctx.attrs.int("axis")?, rank)?;
    if ax == 0 {
        bail!("the channel axis cannot be the batch axis 0");
    }
    let c = x.shape()[ax];
    let groups = groups.unwrap_or(c);
    if groups == 0 || c % groups != 0 {
        bail!("{c} channels are not divisible into {groups} groups");
    }
    let eps = ctx.attrs.float("epsilon")?;
    let scale = channel_weight(ctx, "scale", "use_scale", c, 1.0)?;
    let bias = channel_weight(ctx, "bias", "use_bias", c, 0.0)?;
    let mut perm = vec![0, ax];
    perm.extend((1..rank).filter(|&a| a != ax));
    let moved = x.view().permuted_axes(IxDyn(&perm));
    let moved_shape = moved.shape().to_vec();
    let mut data = moved.as_standard_layout().into_owned();
    let spatial: usize = moved_shape[2..].iter().product();
    let cg = c / groups;
    let block = cg * spatial;
    if block > 0 {
        let s = data.as_slice_mut().expect("standard layout");
        let work = s.len();
        par_chunks(s, block, work, |first, chunk| {
            for (j, blk) in chunk.chunks_mut(block).enumerate() {
                let g = (first + j) % groups;
                let (mean, inv) = stats(blk, eps);
                for (k, plane) in blk.chunks_mut(spatial.max(1)).enumerate() {
                    let ch = g * cg + k;
                    for v in plane.iter_mut() {
                        *v = ((*v as f64 - mean) * inv) as f32 * scale[ch] + bias[ch];
                    }
                }
            }
        });
    }
    let mut inv = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    Ok(data
        .permuted_axes(IxDyn(&inv))
        .as_standard_layout()
        .into_owned())
}

fn group_norm(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    let groups = ctx.attrs.int("groups")?;
    if groups <= 0 {
        bail!("groups must be positive");
    }
    Ok(vec![Value::F32(grouped(ctx, x, Some(groups as usize))?)])
}

fn instance_norm(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    Ok(vec![Value::F32(grouped(ctx, x, None)?)])
}

/// ONNX LRN: the sum runs over channels c − ⌊(size−1)/2⌋ ..= c + ⌈(size−1)/2⌉.
fn lrn(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    let a = &ctx.attrs;
    let size = a.int("size")?;
    if size <= 0 {
        bail!("size must be positive");
    }
    let (alpha, beta, bias) = (
        a.float("alpha")? as f64,
        a.float("beta")? as f64,
        a.float("bias")? as f64,
    );
    let ax = axis(a.int("axis")?, x.ndim())?;
    let before = ((size - 1) / 2) as usize;
    let after = (size as usize - 1) - before;
    let c = x.shape()[ax];
    let y = map_lanes(x.view(), ax, c, |src, dst| {
        for i in 0..src.len() {
            let lo = i.saturating_sub(before);
            let hi = (i + after).min(src.len() - 1);
            let sq: f64 = src[lo..=hi].iter().map(|&v| (v as f64).powi(2)).sum();
            dst[i] = (src[i] as f64 / (bias + alpha / size as f64 * sq).powf(beta)) as f32;
        }
    });
    Ok(vec![Value::F32(y)])
}

fn lp_normalize(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    let ax = axis(ctx.attrs.int("axis")?, x.ndim())?;
    let p = ctx.attrs.int("p")?;
    if p != 1 && p != 2 {
        bail!("p must be 1 or 2, got {p}");
    }
    let eps = ctx.attrs.float("epsilon")? as f64;
    let n = x.shape()[ax];
    let y = map_lanes(x.view(), ax, n, |src, dst| {
        let norm = if p == 1 {
            src.iter().map(|&v| (v as f64).abs()).sum::<f64>()
        } else {
            src.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt()
        };
        let d = norm.max(eps);
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = (v as f64 / d) as f32;
        }
    });
    Ok(vec![Value::F32(y)])
}
