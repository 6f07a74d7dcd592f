//! Convolution and transposed convolution, 1-d to 3-d, both data formats, with groups.
//!
//! Every input is viewed as 3-d spatial (1-d and 2-d get leading size-1 axes). Conv lowers to
//! im2col + GEMM per batch item and group: channels_first computes `W[out, K] · col[K, P]`,
//! channels_last `col[P, K] · W[K, out]`, K running over the weight layout's own order so the
//! weights are used as stored. ConvTranspose is the GEMM `Wᵀ · x` followed by col2im.
//! RuntimeConv is Conv with the kernel and bias taken from its inputs. `auto_pad` is resolved to
//! explicit pads from the input's spatial sizes before anything runs.
mod kernels;

use super::linalg::gemm;
use super::util::{one, pad3, par_chunks};
use super::{OpCtx, OpFn, Value};
use crate::ir::ops::resolved_pads;
use crate::ir::ops::shape_rules::{spatial_axes, spatial_list, split_pads, window_out};
use crate::ir::{AttrValue, DType};
use crate::weights::MemoryWeights;
use anyhow::{bail, Result};
use kernels::{im2col_cf, im2col_cl, Depthwise};
use ndarray::{ArrayD, ArrayView2, ArrayViewMut2, IxDyn};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most floats an im2col buffer may hold (64 MB); output positions are tiled to fit.
static COL_LIMIT: AtomicUsize = AtomicUsize::new(1 << 24);

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Conv" => conv,
        "ConvTranspose" => conv_transpose,
        "RuntimeConv" => runtime_conv,
        _ => return None,
    })
}

/// Window geometry padded to 3 spatial axes.
struct Geom {
    n_spatial: usize,
    kernel: [usize; 3],
    strides: [i64; 3],
    dilations: [i64; 3],
    pad_begin: [i64; 3],
    pad_end: [i64; 3],
}

impl Geom {
    /// The geometry over input `x` (its spatial sizes resolve `auto_pad`).
    fn read(ctx: &OpCtx, x: &ArrayD<f32>, channels_last: bool) -> Result<Geom> {
        let a = &ctx.attrs;
        let (_, axes) = spatial_axes(x.ndim(), channels_last);
        let n_spatial = axes.len();
        let sizes: Vec<i64> = axes.iter().map(|&i| x.shape()[i] as i64).collect();
        let kernel = a.ints("kernel_shape")?;
        if kernel.len() != n_spatial {
            bail!(
                "kernel_shape has {} values but the input has {n_spatial} spatial axes",
                kernel.len()
            );
        }
        if kernel.iter().any(|&k| k <= 0) {
            bail!("kernel_shape {kernel:?} must be positive");
        }
        let strides = spatial_list(a.ints("strides")?, n_spatial, 1, "strides")?;
        let dilations = spatial_list(a.ints("dilations")?, n_spatial, 1, "dilations")?;
        if strides.iter().chain(&dilations).any(|&v| v <= 0) {
            bail!("strides {strides:?} and dilations {dilations:?} must be positive");
        }
        let (pb, pe) = split_pads(resolved_pads(a, &sizes)?, n_spatial)?;
        if pb.iter().chain(&pe).any(|&p| p < 0) {
            bail!("pads must not be negative");
        }
        let k3 = pad3(&kernel, 1);
        Ok(Geom {
            n_spatial,
            kernel: [k3[0] as usize, k3[1] as usize, k3[2] as usize],
            strides: pad3(&strides, 1),
            dilations: pad3(&dilations, 1),
            pad_begin: pad3(&pb, 0),
            pad_end: pad3(&pe, 0),
        })
    }

    fn kernel_size(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Offsets (a, b, e) of kernel tap `t` in (d, h, w) order.
    fn tap(&self, t: usize) -> [i64; 3] {
        let [_, kh, kw] = self.kernel;
        [
            (t / (kh * kw)) as i64,
            ((t / kw) % kh) as i64,
            (t % kw) as i64,
        ]
    }

    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1, 1]
            && self.strides == [1, 1, 1]
            && self.pad_begin == [0; 3]
            && self.pad_end == [0; 3]
    }
}

/// Range of output positions `o` in [0, out) whose input position `o·s − pad + off` lies in
/// [0, size).
fn valid_range(pad: i64, off: i64, stride: i64, size: usize, out: usize) -> (usize, usize) {
    let t = pad - off;
    let lo = if t <= 0 { 0 } else { (t + stride - 1) / stride };
    let u = size as i64 + t;
    let hi = if u <= 0 { 0 } else { (u + stride - 1) / stride };
    let hi = (hi as usize).min(out);
    ((lo as usize).min(hi), hi)
}

/// The activation as a standard-layout 5-d array: [N, C, D, H, W] or [N, D, H, W, C].
fn as_5d(x: ArrayD<f32>, channels_last: bool) -> ArrayD<f32> {
    let s = x.shape().to_vec();
    let ns = s.len() - 2;
    let mut shape = vec![s[0]];
    if channels_last {
        shape.extend(std::iter::repeat_n(1, 3 - ns));
        shape.extend(&s[1..]);
    } else {
        shape.push(s[1]);
        shape.extend(std::iter::repeat_n(1, 3 - ns));
        shape.extend(&s[2..]);
    }
    let x = if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    };
    x.into_shape_with_order(IxDyn(&shape)).expect("same size")
}

/// Shape of the result in the caller's rank from batch, channels and 3-d spatial sizes.
fn out_shape(
    n: usize,
    c: usize,
    sp: [usize; 3],
    n_spatial: usize,
    channels_last: bool,
) -> Vec<usize> {
    let sp = &sp[3 - n_spatial..];
    let mut s = vec![n];
    if channels_last {
        s.extend(sp);
        s.push(c);
    } else {
        s.push(c);
        s.extend(sp);
    }
    s
}

fn input_checks(x: &ArrayD<f32>) -> Result<()> {
    if !(3..=5).contains(&x.ndim()) {
        bail!("expects a rank 3 to 5 input, got shape {:?}", x.shape());
    }
    Ok(())
}

/// Conv on a copy of the node whose weights are the inputs w and b.
fn runtime_conv(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let mut inputs = inputs.into_iter();
    let (Some(x), Some(w)) = (inputs.next(), inputs.next()) else {
        bail!("expects the inputs x and w");
    };
    let b = inputs.next();
    let (a, xs) = (&ctx.attrs, x.shape());
    let cin = xs.get(1).copied().unwrap_or(0) as i64 / a.int("group")?.max(1);
    let want: Vec<i64> = [a.int("out_channels")?, cin]
        .into_iter()
        .chain(a.ints("kernel_shape")?)
        .collect();
    if !w.shape().iter().map(|&d| d as i64).eq(want.iter().copied()) {
        bail!("kernel w has shape {:?}; expected {want:?}", w.shape());
    }
    let mut node = ctx.node.clone();
    node.op = "Conv".into();
    let flag = AttrValue::Bool(b.is_some());
    node.attrs.insert("use_bias".into(), flag);
    let mut weights = MemoryWeights::default();
    weights.insert(&node.name, "weights", w.to_tensor(DType::F32)?);
    if let Some(b) = b {
        weights.insert(&node.name, "bias", b.to_tensor(DType::F32)?);
    }
    conv(&OpCtx::new(&node, &weights)?, vec![x])
}

fn conv(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    input_checks(&x)?;
    let cl = ctx.attrs.channels_last()?;
    let g = Geom::read(ctx, &x, cl)?;
    let group = ctx.attrs.int("group")?;
    let cout = ctx.attrs.int("out_channels")?;
    let cin = if cl {
        x.shape()[x.ndim() - 1]
    } else {
        x.shape()[1]
    };
    if group <= 0 || cout <= 0 || cin as i64 % group != 0 || cout % group != 0 {
        bail!("{cin} input and {cout} output channels are not divisible into {group} groups");
    }
    let (group, cout) = (group as usize, cout as usize);
    let (cin_g, cout_g) = (cin / group, cout / group);
    let ksize = g.kernel_size();
    let kdims = &g.kernel[3 - g.n_spatial..];
    let wshape: Vec<usize> = if cl {
        kdims.iter().copied().chain([cin_g, cout]).collect()
    } else {
        [cout, cin_g]
            .into_iter()
            .chain(kdims.iter().copied())
            .collect()
    };
    let w = ctx.weight_f32("weights", &wshape)?;
    let w = w.as_f32()?;
    let bias = ctx.flagged_weight("bias", "use_bias")?;
    let bias = match &bias {
        Some(b) => Some(ctx_bias(b, cout)?),
        None => None,
    };
    let x5 = as_5d(x, cl);
    let n = x5.shape()[0];
    let ins: [usize; 3] = if cl {
        [x5.shape()[1], x5.shape()[2], x5.shape()[3]]
    } else {
        [x5.shape()[2], x5.shape()[3], x5.shape()[4]]
    };
    let mut outs = [0usize; 3];
    for i in 0..3 {
        let o = window_out(
            ins[i] as i64,
            g.kernel[i] as i64,
            g.strides[i],
            g.dilations[i],
            g.pad_begin[i],
            g.pad_end[i],
            false,
        )?;
        outs[i] = o.max(0) as usize;
    }
    let p_out: usize = outs.iter().product();
    let p_in: usize = ins.iter().product();
    let kk = cin_g * ksize;
    let mut y = vec![0f32; n * cout * p_out];
    let xs = x5.as_slice().expect("standard layout");
    let wm = w
        .view()
        .into_shape_with_order(if cl { (kk, cout) } else { (cout, kk) })
        .expect("weights are contiguous");
    // channels_last im2col orders K as channels_first does (channel, then tap), so both
    // layouts sum every output in the same order and give identical results: the weights
    // [tap, channel, out] are reordered to [channel, tap, out] to match.
    let wm_cl = (cl && !g.is_pointwise()).then(|| {
        let w3 = wm
            .into_shape_with_order((ksize, cin_g, cout))
            .expect("weights are contiguous");
        w3.permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((kk, cout))
            .expect("contiguous")
    });
    if p_out > 0 && group == cin && group > 1 {
        let ws = w.as_slice().expect("weights are contiguous");
        let geo = Depthwise {
            cin,
            cout,
            ins,
            outs,
            g: &g,
        };
        for b in 0..n {
            let xb = &xs[b * cin * p_in..(b + 1) * cin * p_in];
            let yb = &mut y[b * cout * p_out..(b + 1) * cout * p_out];
            if cl {
                geo.run_cl(xb, ws, yb);
            } else {
                geo.run_cf(xb, ws, yb);
            }
        }
    } else if p_out > 0 && kk > 0 {
        let limit = COL_LIMIT.load(Ordering::Relaxed);
        let tile = (limit / kk).clamp(1, p_out);
        let mut col = vec![0f32; kk * tile];
        for b in 0..n {
            let xb = &xs[b * cin * p_in..(b + 1) * cin * p_in];
            let yb = &mut y[b * cout * p_out..(b + 1) * cout * p_out];
            for gi in 0..group {
                if cl {
                    let mut ym = ArrayViewMut2::from_shape((p_out, cout), &mut *yb).expect("size");
                    let wg = wm.slice(ndarray::s![.., gi * cout_g..(gi + 1) * cout_g]);
                    if g.is_pointwise() {
                        let xm = ArrayView2::from_shape((p_in, cin), xb).expect("size");
                        let xg = xm.slice(ndarray::s![.., gi * cin_g..(gi + 1) * cin_g]);
                        let yg = ym.slice_mut(ndarray::s![.., gi * cout_g..(gi + 1) * cout_g]);
                        gemm(xg, wg, 0.0, yg);
                        continue;
                    }
                    let wg = wm_cl
                        .as_ref()
                        .expect("reordered weights")
                        .slice(ndarray::s![.., gi * cout_g..(gi + 1) * cout_g]);
                    let mut p0 = 0;
                    while p0 < p_out {
                        let p1 = (p0 + tile).min(p_out);
                        let c = &mut col[..(p1 - p0) * kk];
                        im2col_cl(xb, cin, gi * cin_g, cin_g, ins, outs, &g, p0, c);
                        let cm = ArrayView2::from_shape((p1 - p0, kk), &*c).expect("size");
                        let yg = ym.slice_mut(ndarray::s![p0..p1, gi * cout_g..(gi + 1) * cout_g]);
                        gemm(cm, wg, 0.0, yg);
                        p0 = p1;
                    }
                } else {
                    let xg = &xb[gi * cin_g * p_in..(gi + 1) * cin_g * p_in];
                    let yg = &mut yb[gi * cout_g * p_out..(gi + 1) * cout_g * p_out];
                    let mut ym = ArrayViewMut2::from_shape((cout_g, p_out), yg).expect("size");
                    let wg = wm.slice(ndarray::s![gi * cout_g..(gi + 1) * cout_g, ..]);
                    if g.is_pointwise() {
                        let xm = ArrayView2::from_shape((cin_g, p_in), xg).expect("size");
                        gemm(wg, xm, 0.0, ym);
                        continue;
                    }
                    let mut p0 = 0;
                    while p0 < p_out {
                        let p1 = (p0 + tile).min(p_out);
                        let c = &mut col[..(p1 - p0) * kk];
                        im2col_cf(xg, cin_g, ins, outs, &g, p0, p1, c);
                        let cm = ArrayView2::from_shape((kk, p1 - p0), &*c).expect("size");
                        gemm(wg, cm, 0.0, ym.slice_mut(ndarray::s![.., p0..p1]));
                        p0 = p1;
                    }
                }
            }
        }
    }
    if let Some(bias) = bias {
        add_bias(&mut y, &bias, cout, p_out, cl);
    }
    let shape = out_shape(n, cout, outs, g.n_spatial, cl);
    Ok(vec![Value::F32(ArrayD::from_shape_vec(IxDyn(&shape), y)?)])
}

fn ctx_bias(b: &Value, c: usize) -> Result<Vec<f32>> {
    let b = b.as_f32()?;
    if b.shape() != [c] {
        bail!("weight 'bias' has shape {:?}; expected [{c}]", b.shape());
    }
    Ok(b.iter().copied().collect())
}

/// Adds a per-channel bias to `y`, laid out [N, C, P] or [N, P, C].
fn add_bias(y: &mut [f32], bias: &[f32], c: usize, p: usize, channels_last: bool) {
    if channels_last {
        for row in y.chunks_mut(c.max(1)) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    } else {
        for (i, plane) in y.chunks_mut(p.max(1)).enumerate() {
            let b = bias[i % c];
            plane.iter_mut().for_each(|v| *v += b);
        }
    }
}

fn conv_transpose(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    input_checks(&x)?;
    let cl = ctx.attrs.channels_last()?;
    let g = Geom::read(ctx, &x, cl)?;
    let extra = pad3(
        &spatial_list(
            ctx.attrs.ints("output_padding")?,
            g.n_spatial,
            0,
            "output_padding",
        )?,
        0,
    );
    let group = ctx.attrs.int("group")?;
    let cout = ctx.attrs.int("out_channels")?;
    let cin = if cl {
        x.shape()[x.ndim() - 1]
    } else {
        x.shape()[1]
    };
    if group <= 0 || cout <= 0 || cin as i64 % group != 0 || cout % group != 0 {
        bail!("{cin} input and {cout} output channels are not divisible into {group} groups");
    }
    let (group, cout) = (group as usize, cout as usize);
    let (cin_g, cout_g) = (cin / group, cout / group);
    let ksize = g.kernel_size();
    let kdims = &g.kernel[3 - g.n_spatial..];
    let wshape: Vec<usize> = if cl {
        kdims.iter().copied().chain([cout_g, cin]).collect()
    } else {
        [cin, cout_g]
            .into_iter()
            .chain(kdims.iter().copied())
            .collect()
    };
    let w = ctx.weight_f32("weights", &wshape)?;
    let w = w.as_f32()?;
    let bias = ctx.flagged_weight("bias", "use_bias")?;
    let bias = match &bias {
        Some(b) => Some(ctx_bias(b, cout)?),
        None => None,
    };
    let x5 = as_5d(x, cl);
    let n = x5.shape()[0];
    let ins: [usize; 3] = if cl {
        [x5.shape()[1], x5.shape()[2], x5.shape()[3]]
    } else {
        [x5.shape()[2], x5.shape()[3], x5.shape()[4]]
    };
    let mut outs = [0usize; 3];
    for i in 0..3 {
        let o = (ins[i] as i64 - 1) * g.strides[i] - g.pad_begin[i] - g.pad_end[i]
            + g.dilations[i] * (g.kernel[i] as i64 - 1)
            + extra[i]
            + 1;
        if o < 0 {
            bail!("the output would have a negative size on a spatial axis");
        }
        outs[i] = o as usize;
    }
    let p_out: usize = outs.iter().product();
    let p_in: usize = ins.iter().product();
    let kc = ksize * cout_g;
    let xs = x5.as_slice().expect("standard layout");
    let wm = w
        .view()
        .into_shape_with_order(if cl { (kc, cin) } else { (cin, kc) })
        .expect("weights are contiguous");
    let mut y = vec![0f32; n * cout * p_out];
    let mut col = vec![0f32; kc * p_in];
    // Output position (flattened) of input position `i` through kernel tap `t`, if inside.
    let target = |i: usize, t: usize| -> Option<usize> {
        let ip = [i / (ins[1] * ins[2]), (i / ins[2]) % ins[1], i % ins[2]];
        let off = g.tap(t);
        let mut o = 0usize;
        for a in 0..3 {
            let v = ip[a] as i64 * g.strides[a] + off[a] * g.dilations[a] - g.pad_begin[a];
            if v < 0 || v as usize >= outs[a] {
                return None;
            }
            o = o * outs[a] + v as usize;
        }
        Some(o)
    };
    if p_in > 0 && p_out > 0 {
        for b in 0..n {
            let xb = &xs[b * cin * p_in..(b + 1) * cin * p_in];
            let yb = &mut y[b * cout * p_out..(b + 1) * cout * p_out];
            for gi in 0..group {
                if cl {
                    // col [P_in, K·cout_g] = x_g [P_in, cin_g] · W_gᵀ.
                    let xm = ArrayView2::from_shape((p_in, cin), xb).expect("size");
                    let xg = xm.slice(ndarray::s![.., gi * cin_g..(gi + 1) * cin_g]);
                    let wg = wm.slice(ndarray::s![.., gi * cin_g..(gi + 1) * cin_g]);
                    let cm = ArrayViewMut2::from_shape((p_in, kc), &mut col[..]).expect("size");
                    gemm(xg, wg.t(), 0.0, cm);
                    for i in 0..p_in {
                        for t in 0..ksize {
                            if let Some(o) = target(i, t) {
                                let src = &col[i * kc + t * cout_g..i * kc + (t + 1) * cout_g];
                                let dst =
                                    &mut yb[o * cout + gi * cout_g..o * cout + (gi + 1) * cout_g];
                                dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                            }
                        }
                    }
                } else {
                    // col [cout_g·K, P_in] = W_gᵀ · x_g.
                    let xm = ArrayView2::from_shape(
                        (cin_g, p_in),
                        &xb[gi * cin_g * p_in..(gi + 1) * cin_g * p_in],
                    )
                    .expect("size");
                    let wg = wm.slice(ndarray::s![gi * cin_g..(gi + 1) * cin_g, ..]);
                    let cm = ArrayViewMut2::from_shape((kc, p_in), &mut col[..]).expect("size");
                    gemm(wg.t(), xm, 0.0, cm);
                    let col = &col;
                    let yg = &mut yb[gi * cout_g * p_out..(gi + 1) * cout_g * p_out];
                    par_chunks(yg, p_out, kc * p_in, |first, planes| {
                        for (j, plane) in planes.chunks_mut(p_out).enumerate() {
                            let co = first + j;
                            for t in 0..ksize {
                                let src =
                                    &col[(co * ksize + t) * p_in..(co * ksize + t + 1) * p_in];
                                for (i, &v) in src.iter().enumerate() {
                                    if let Some(o) = target(i, t) {
                                        plane[o] += v;
                                    }
                                }
                            }
                        }
                    });
                }
            }
        }
    }
    if let Some(bias) = bias {
        add_bias(&mut y, &bias, cout, p_out, cl);
    }
    let shape = out_shape(n, cout, outs, g.n_spatial, cl);
    Ok(vec![Value::F32(ArrayD::from_shape_vec(IxDyn(&shape), y)?)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::graph::Node;
    use crate::ir::types::AttrValue;
    use crate::weights::{MemoryWeights, Tensor};
    use ndarray::Dimension;

    /// Tiling output positions (a small im2col limit) gives the same result as one tile.
    #[test]
    fn tiled_im2col_matches_untiled() {
        for cl in [false, true] {
            let (cin, cout, h, w) = (3usize, 4usize, 7usize, 6usize);
            let wshape = if cl {
                vec![3, 2, cin, cout]
            } else {
                vec![cout, cin, 3, 2]
            };
            let n: usize = wshape.iter().product();
            let wv: Vec<f32> = (0..n).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
            let mut weights = MemoryWeights::default();
            weights.insert("c", "weights", Tensor::from_f32(wshape, &wv).unwrap());
            let fmt = if cl {
                "channels_last"
            } else {
                "channels_first"
            };
            let node = Node::new("c", "Conv")
                .with_attr("kernel_shape", AttrValue::Ints(vec![3, 2]))
                .with_attr("strides", AttrValue::Ints(vec![2, 1]))
                .with_attr("pads", AttrValue::Ints(vec![1, 0, 1, 1]))
                .with_attr("out_channels", AttrValue::Int(cout as i64))
                .with_attr("data_format", AttrValue::Str(fmt.into()));
            let shape = if cl {
                vec![2, h, w, cin]
            } else {
                vec![2, cin, h, w]
            };
            let x = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
                (i.slice().iter().sum::<usize>() % 5) as f32 - 2.0
            });
            let run = || {
                crate::interp::run_op(&node, &weights, vec![Value::F32(x.clone())])
                    .unwrap()
                    .remove(0)
            };
            let whole = run();
            COL_LIMIT.store(13, Ordering::Relaxed);
            let tiled = run();
            COL_LIMIT.store(1 << 24, Ordering::Relaxed);
            assert_eq!(whole, tiled, "channels_last = {cl}");
        }
    }
}
