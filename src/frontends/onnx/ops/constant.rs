//! Constants: the Constant node (every `value*` attribute form of opsets 7 to 28 but strings
//! and sparse tensors), and ConstantOfShape, Range and ScatterND, which have no IR op and are
//! computed at conversion time (they build shape-derived tensors, e.g. Swin's attention mask).
use super::OpFn;
use crate::frontends::onnx::builder::{to_ints, unknown_dims_message, Val};
use crate::frontends::onnx::node::Ctx;
use crate::frontends::onnx::tensor::Lazy;
use crate::interp::Value;
use crate::ir::DType;
use crate::weights::Tensor;
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Constant" => constant,
        "ConstantOfShape" => constant_of_shape,
        "Range" => range,
        "ScatterND" => scatter_nd,
        _ => return None,
    })
}

fn constant(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let data = if let Some(t) = ctx.opt_tensor("value")? {
        ctx.decode(t)?
    } else if let Some(v) = ctx.opt_float("value_float")? {
        Lazy::ready(Tensor::from_f32(vec![], &[v])?)
    } else if let Some(v) = ctx.opt_floats("value_floats")? {
        Lazy::ready(Tensor::from_f32(vec![v.len()], &v)?)
    } else if let Some(v) = ctx.opt_int("value_int")? {
        Lazy::ready(Tensor::new(DType::I64, vec![], v.to_le_bytes().to_vec())?)
    } else if let Some(v) = ctx.opt_ints("value_ints")? {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Lazy::ready(Tensor::new(DType::I64, vec![v.len()], bytes)?)
    } else {
        bail!("no value the IR can hold (string and sparse constants are not supported)");
    };
    let name = ctx.out_name(0);
    Ok(vec![ctx.b.constant(&name, data)])
}

/// ConstantOfShape: `value` (a one-element tensor, default float 0) repeated to the shape.
fn constant_of_shape(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let shape = ctx.input(0)?;
    let fill = match ctx.opt_tensor("value")? {
        Some(t) => Value::from_tensor(&ctx.decode(t)?.tensor()?)?,
        None => Value::F32(ArrayD::from_elem(IxDyn(&[1]), 0.0)),
    };
    let dtype = match ctx.opt_tensor("value")? {
        Some(t) => crate::frontends::onnx::tensor::dtype(t.data_type)?,
        None => DType::F32,
    };
    if fill.len() != 1 {
        bail!("value must hold one element, got {}", fill.describe());
    }
    if let Val::Probed(p) = &shape {
        // A tensor the size of an unknown-dim input (zeros_like) is never a shape computation.
        for v in p.values.iter() {
            if to_ints(v)?.iter().product::<i64>() > 1 << 16 {
                bail!("{}", unknown_dims_message(&p.name));
            }
        }
    }
    let name = ctx.out_name(0);
    let v = ctx.b.compute(&name, &[shape], dtype, |v| {
        let dims = to_ints(&v[0])?
            .iter()
            .map(|&d| usize::try_from(d).context("a negative dim"))
            .collect::<Result<Vec<_>>>()?;
        let shape = IxDyn(&dims);
        Ok(match &fill {
            Value::F32(a) => Value::F32(ArrayD::from_elem(
                shape,
                a.iter().copied().next().unwrap_or(0.0),
            )),
            Value::I64(a) => Value::I64(ArrayD::from_elem(
                shape,
                a.iter().copied().next().unwrap_or(0),
            )),
            Value::Bool(a) => Value::Bool(ArrayD::from_elem(
                shape,
                a.iter().copied().next().unwrap_or(false),
            )),
        })
    })?;
    Ok(vec![v])
}

/// Range(start, limit, delta): max(ceil((limit − start) / delta), 0) values.
fn range(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let inputs = [ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    let dtype = inputs[0].dtype();
    let name = ctx.out_name(0);
    let v = ctx.b.compute(&name, &inputs, dtype, |v| {
        let scalar = |x: &Value| -> Result<f64> {
            if x.len() != 1 {
                bail!("Range takes scalars, got {}", x.describe());
            }
            Ok(x.to_f32().iter().copied().next().expect("one value") as f64)
        };
        Ok(match (&v[0], &v[1], &v[2]) {
            (Value::I64(s), Value::I64(l), Value::I64(d)) => {
                let (s, l, d) = (first(s)?, first(l)?, first(d)?);
                if d == 0 {
                    bail!("Range delta is 0");
                }
                let n = ((l - s) as f64 / d as f64).ceil().max(0.0) as usize;
                let vals: Vec<i64> = (0..n as i64).map(|i| s + i * d).collect();
                Value::I64(ArrayD::from_shape_vec(IxDyn(&[n]), vals)?)
            }
            _ => {
                let (s, l, d) = (scalar(&v[0])?, scalar(&v[1])?, scalar(&v[2])?);
                if d == 0.0 {
                    bail!("Range delta is 0");
                }
                let n = ((l - s) / d).ceil().max(0.0) as usize;
                let vals: Vec<f32> = (0..n).map(|i| (s + i as f64 * d) as f32).collect();
                Value::F32(ArrayD::from_shape_vec(IxDyn(&[n]), vals)?)
            }
        })
    })?;
    Ok(vec![v])
}

fn first(a: &ArrayD<i64>) -> Result<i64> {
    if a.len() != 1 {
        bail!("Range takes scalars, got shape {:?}", a.shape());
    }
    Ok(a.iter().copied().next().expect("one value"))
}

/// ScatterND(data, indices, updates): data with the slices `data[indices[i]]` replaced by (or,
/// with `reduction`, combined with) `updates[i]`, in order.
fn scatter_nd(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let inputs = [ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    let reduction = ctx.string("reduction", "none")?;
    let dtype = inputs[0].dtype();
    let name = ctx.out_name(0);
    let v = ctx.b.compute(&name, &inputs, dtype, |v| {
        let indices = v[1].as_i64()?;
        Ok(match (&v[0], &v[2]) {
            (Value::F32(d), Value::F32(u)) => {
                let f: fn(f32, f32) -> f32 = match reduction.as_str() {
                    "none" => |_, u| u,
                    "add" => |d, u| d + u,
                    "mul" => |d, u| d * u,
                    "max" => f32::max,
                    "min" => f32::min,
                    r => bail!("unknown reduction '{r}'"),
                };
                Value::F32(scatter(d, indices, u, f)?)
            }
            (Value::I64(d), Value::I64(u)) => {
                let f: fn(i64, i64) -> i64 = match reduction.as_str() {
                    "none" => |_, u| u,
                    "add" => |d, u| d.wrapping_add(u),
                    "mul" => |d, u| d.wrapping_mul(u),
                    "max" => |d, u| d.max(u),
                    "min" => |d, u| d.min(u),
                    r => bail!("unknown reduction '{r}'"),
                };
                Value::I64(scatter(d, indices, u, f)?)
            }
            (Value::Bool(d), Value::Bool(u)) if reduction == "none" => {
                Value::Bool(scatter(d, indices, u, |_, u| u)?)
            }
            (d, u) => bail!(
                "cannot scatter {} into {} with reduction '{reduction}'",
                u.describe(),
                d.describe()
            ),
        })
    })?;
    Ok(vec![v])
}

/// The ScatterND of one element type; `f(old, update)` gives each new element.
fn scatter<T: Copy>(
    data: &ArrayD<T>,
    indices: &ArrayD<i64>,
    updates: &ArrayD<T>,
    f: fn(T, T) -> T,
) -> Result<ArrayD<T>> {
    let (dshape, ishape) = (data.shape(), indices.shape());
    let k = *ishape.last().context("indices must have rank ≥ 1")?;
    if k == 0 {
        bail!("indices whose last dim is 0 are not supported");
    }
    let batch = &ishape[..ishape.len() - 1];
    let slice = dshape
        .get(k..)
        .context("indices are longer than the data's rank")?;
    let want: Vec<usize> = batch.iter().chain(slice).copied().collect();
    if updates.shape() != want.as_slice() {
        bail!(
            "updates have shape {:?}, expected {want:?}",
            updates.shape()
        );
    }
    let slice_len: usize = slice.iter().product();
    let mut out: Vec<T> = data.iter().copied().collect();
    let upd: Vec<T> = updates.iter().copied().collect();
    let idx: Vec<i64> = indices.iter().copied().collect();
    for (i, tuple) in idx.chunks(k).enumerate().take(batch.iter().product()) {
        let mut offset = 0usize;
        for (a, &j) in tuple.iter().take(k).enumerate() {
            let n = dshape[a] as i64;
            if j < -n || j >= n {
                bail!("index {j} is out of range for axis {a} of size {n}");
            }
            offset = offset * dshape[a] + (if j < 0 { j + n } else { j }) as usize;
        }
        let base = offset * slice_len;
        for (o, &u) in out[base..base + slice_len]
            .iter_mut()
            .zip(&upd[i * slice_len..(i + 1) * slice_len])
        {
            *o = f(*o, u);
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(dshape), out)?)
}
