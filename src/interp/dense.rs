//! Fully connected layers, matrix products and embeddings.
use super::linalg::gemm;
use super::util::{broadcast_shape, one, take};
use super::{OpCtx, OpFn, Value};
use anyhow::{bail, Result};
use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "FullyConnected" => fully_connected,
        "MatMul" => matmul,
        "Gemm" => gemm_op,
        "Embedding" => embedding,
        _ => return None,
    })
}

fn fully_connected(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    if x.ndim() < 2 {
        bail!(
            "expects an input of rank 2 or more, got shape {:?}",
            x.shape()
        );
    }
    let units = ctx.attrs.int("units")?;
    if units < 0 {
        bail!("units must not be negative");
    }
    let units = units as usize;
    let fin = x.shape()[x.ndim() - 1];
    let w = ctx.weight_f32("weights", &[fin, units])?;
    let w = w.as_f32()?.view().into_dimensionality::<ndarray::Ix2>()?;
    let rows = x.len() / fin.max(1);
    let rows = if fin == 0 {
        x.shape()[..x.ndim() - 1].iter().product()
    } else {
        rows
    };
    let xs = x.as_standard_layout();
    let xm = ArrayView2::from_shape((rows, fin), xs.as_slice().expect("standard"))?;
    let mut y = Array2::<f32>::zeros((rows, units));
    gemm(xm, w, 0.0, y.view_mut());
    if let Some(b) = ctx.flagged_weight("bias", "use_bias")? {
        let b = b.as_f32()?;
        if b.shape() != [units] {
            bail!(
                "weight 'bias' has shape {:?}; expected [{units}]",
                b.shape()
            );
        }
        y += &b.view().into_dimensionality::<ndarray::Ix1>()?;
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank >= 2") = units;
    Ok(vec![Value::F32(
        y.into_shape_with_order(IxDyn(&shape))?.into_dyn(),
    )])
}

/// NumPy matmul of two arrays of the same kind (f32 through GEMM, i64 by loops).
fn matmul(_ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let [a, b] = take(inputs)?;
    Ok(vec![match (a, b) {
        (Value::F32(a), Value::F32(b)) => Value::F32(batched(&a, &b, |x, y, out| {
            gemm(x, y, 0.0, out.view_mut());
        })?),
        (Value::I64(a), Value::I64(b)) => Value::I64(batched(&a, &b, |x, y, out| {
            for ((i, j), o) in out.indexed_iter_mut() {
                *o = x
                    .row(i)
                    .iter()
                    .zip(y.column(j))
                    .fold(0i64, |s, (&p, &q)| s.wrapping_add(p.wrapping_mul(q)));
            }
        })?),
        (a, b) => bail!("cannot multiply {} by {}", a.describe(), b.describe()),
    }])
}

/// Broadcasting batched matrix product with NumPy's promotion of 1-d operands.
fn batched<T: Clone + num_like::Zero>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    mm: impl Fn(ArrayView2<T>, ArrayView2<T>, &mut Array2<T>),
) -> Result<ArrayD<T>> {
    if a.ndim() == 0 || b.ndim() == 0 {
        bail!("MatMul needs inputs of rank 1 or more");
    }
    let a2 = if a.ndim() == 1 {
        a.view().insert_axis(Axis(0))
    } else {
        a.view()
    };
    let b2 = if b.ndim() == 1 {
        b.view().insert_axis(Axis(1))
    } else {
        b.view()
    };
    let (ra, rb) = (a2.ndim(), b2.ndim());
    let (m, k) = (a2.shape()[ra - 2], a2.shape()[ra - 1]);
    let (k2, n) = (b2.shape()[rb - 2], b2.shape()[rb - 1]);
    if k != k2 {
        bail!("inner dims differ: {:?} · {:?}", a.shape(), b.shape());
    }
    let batch = broadcast_shape(&a2.shape()[..ra - 2], &b2.shape()[..rb - 2])?;
    let mut full_a = batch.clone();
    full_a.extend([m, k]);
    let mut full_b = batch.clone();
    full_b.extend([k, n]);
    let av = a2.broadcast(IxDyn(&full_a)).expect("broadcast");
    let bv = b2.broadcast(IxDyn(&full_b)).expect("broadcast");
    let nb: usize = batch.iter().product();
    let av = av.to_shape(IxDyn(&[nb, m, k]))?;
    let bv = bv.to_shape(IxDyn(&[nb, k, n]))?;
    let mut out = Vec::with_capacity(nb * m * n);
    for i in 0..nb {
        let x = av
            .index_axis(Axis(0), i)
            .into_dimensionality::<ndarray::Ix2>()?;
        let y = bv
            .index_axis(Axis(0), i)
            .into_dimensionality::<ndarray::Ix2>()?;
        let mut o = Array2::from_elem((m, n), T::zero());
        mm(x, y, &mut o);
        out.extend(o);
    }
    let mut shape = batch;
    if a.ndim() > 1 {
        shape.push(m);
    }
    if b.ndim() > 1 {
        shape.push(n);
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out)?)
}

mod num_like {
    /// The additive identity, for the element types MatMul supports.
    pub trait Zero {
        fn zero() -> Self;
    }
    impl Zero for f32 {
        fn zero() -> f32 {
            0.0
        }
    }
    impl Zero for i64 {
        fn zero() -> i64 {
            0
        }
    }
}

fn gemm_op(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    if !(2..=3).contains(&inputs.len()) {
        bail!("takes 2 or 3 inputs, got {}", inputs.len());
    }
    let mut it = inputs.into_iter();
    let a = it.next().expect("2 inputs").into_f32()?;
    let b = it.next().expect("2 inputs").into_f32()?;
    let c = it.next().map(|c| c.into_f32()).transpose()?;
    let a = a
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| anyhow::anyhow!("a must be 2-d"))?;
    let b = b
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| anyhow::anyhow!("b must be 2-d"))?;
    let a = if ctx.attrs.bool("trans_a")? {
        a.reversed_axes()
    } else {
        a
    };
    let b = if ctx.attrs.bool("trans_b")? {
        b.reversed_axes()
    } else {
        b
    };
    if a.dim().1 != b.dim().0 {
        bail!("inner dims differ: {:?} · {:?}", a.shape(), b.shape());
    }
    let (alpha, beta) = (ctx.attrs.float("alpha")?, ctx.attrs.float("beta")?);
    let mut y = Array2::<f32>::zeros((a.dim().0, b.dim().1));
    gemm(a.view(), b.view(), 0.0, y.view_mut());
    if alpha != 1.0 {
        y.mapv_inplace(|v| v * alpha);
    }
    let mut y = y.into_dyn();
    if let Some(c) = c {
        let ok = super::util::zip_assign(&mut y, &c, |v, cv| v + beta * cv);
        if !ok {
            bail!(
                "c of shape {:?} does not broadcast to {:?}",
                c.shape(),
                y.shape()
            );
        }
    }
    Ok(vec![Value::F32(y)])
}

fn embedding(ctx: &OpCtx, inputs: Vec<Value>) -> Result<Vec<Value>> {
    let ids = one(inputs)?.into_i64()?;
    let (vocab, dim) = (ctx.attrs.int("input_dim")?, ctx.attrs.int("output_dim")?);
    if vocab < 0 || dim < 0 {
        bail!("input_dim and output_dim must not be negative");
    }
    let (vocab, dim) = (vocab as usize, dim as usize);
    let w = ctx.weight_f32("weights", &[vocab, dim])?;
    let table = w.as_f32()?.as_standard_layout();
    let table = table.as_slice().expect("standard");
    let mut out = Vec::with_capacity(ids.len() * dim);
    for &i in ids.iter() {
        if i < 0 || i as usize >= vocab {
            bail!("index {i} is out of range for a vocabulary of {vocab}");
        }
        out.extend_from_slice(&table[i as usize * dim..(i as usize + 1) * dim]);
    }
    let mut shape = ids.shape().to_vec();
    shape.push(dim);
    Ok(vec![Value::F32(ArrayD::from_shape_vec(
        IxDyn(&shape),
        out,
    )?)])
}
