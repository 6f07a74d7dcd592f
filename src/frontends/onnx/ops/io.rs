//! Constants: the Constant node (every `value*` attribute form of opsets 7 to 28 but strings
//! and sparse tensors), and ConstantOfShape and Range, computed at conversion time when their
//! inputs are known (they build shape-derived tensors, e.g. Swin's attention mask); over
//! symbolic dims or inputs computed at run time they become an Expand of the value and the
//! IR's (integer) Range.
use super::OpFn;
use crate::frontends::builder::FOLD_CAP_BYTES;
use crate::frontends::onnx::builder::{not_constant_because, to_ints, IntsArg, Spec, Val};
use crate::frontends::onnx::node::Ctx;
use crate::frontends::onnx::tensor::Lazy;
use crate::interp::Value;
use crate::ir::{AttrValue, DType};
use crate::weights::Tensor;
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Constant" => constant,
        "ConstantOfShape" => constant_of_shape,
        "Range" => range,
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
    if let Val::Dims(d) = &shape {
        // A symbolic shape (`zeros(x.shape[0], 16)`): the value broadcast to it at run time.
        let dims = to_ints(&d.value)?;
        let name = ctx.out_name(0);
        let one = ctx
            .b
            .constant_value(&format!("{name}_value"), &fill, dtype)?;
        let s = ctx.spec("Expand").ints("shape", dims).input(&one);
        return Ok(vec![ctx.emit1(s)?]);
    }
    if shape.is_runtime() {
        // A shape computed at run time: the value (a scalar) broadcast to it.
        let first = fill.to_f32().iter().copied().next().unwrap_or(0.0);
        let scalar = match &fill {
            Value::F32(_) => Value::F32(ArrayD::from_elem(IxDyn(&[]), first)),
            Value::I64(a) => Value::I64(ArrayD::from_elem(
                IxDyn(&[]),
                a.iter().copied().next().unwrap_or(0),
            )),
            Value::Bool(_) => Value::Bool(ArrayD::from_elem(IxDyn(&[]), first != 0.0)),
        };
        let name = ctx.out_name(0);
        let one = ctx
            .b
            .constant_value(&format!("{name}_value"), &scalar, dtype)?;
        let s = ctx
            .spec("Expand")
            .ints_or_input("shape", IntsArg::Runtime(shape))
            .input(&one);
        return Ok(vec![ctx.emit1(s)?]);
    }
    let name = ctx.out_name(0);
    let v = ctx.b.compute(&name, &[shape], dtype, |v| {
        let dims = to_ints(&v[0])?
            .iter()
            .map(|&d| usize::try_from(d).context("a negative dim"))
            .collect::<Result<Vec<_>>>()?;
        let bytes = dims
            .iter()
            .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
            .filter(|&n| n as u64 <= FOLD_CAP_BYTES);
        if bytes.is_none() {
            bail!(
                "a {dtype} tensor of shape {dims:?} would be made at conversion time (the IR has \
                 no op that makes it at run time), and it is larger than the {} MB the reader \
                 computes",
                FOLD_CAP_BYTES >> 20
            );
        }
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
    if inputs
        .iter()
        .any(|v| matches!(v, Val::Dims(_)) || v.is_runtime())
    {
        return symbolic_range(ctx, &inputs, dtype);
    }
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
                let n = range_len((l as f64 - s as f64) / d as f64)?;
                let vals: Vec<i64> = (0..n as i64).map(|i| s + i * d).collect();
                Value::I64(ArrayD::from_shape_vec(IxDyn(&[n]), vals)?)
            }
            _ => {
                let (s, l, d) = (scalar(&v[0])?, scalar(&v[1])?, scalar(&v[2])?);
                if d == 0.0 {
                    bail!("Range delta is 0");
                }
                let n = range_len((l - s) / d)?;
                let vals: Vec<f32> = (0..n).map(|i| (s + i as f64 * d) as f32).collect();
                Value::F32(ArrayD::from_shape_vec(IxDyn(&[n]), vals)?)
            }
        })
    })?;
    Ok(vec![v])
}

/// Range over symbolic dims (`arange(seq_len)`) or bounds computed at run time: the IR's
/// Range, with each bound an attribute when known now (the limit possibly a symbolic dim), else
/// a run-time input; int32 sequences are cast after it.
fn symbolic_range(ctx: &mut Ctx, inputs: &[Val; 3], dtype: DType) -> Result<Vec<Val>> {
    if !matches!(dtype, DType::I64 | DType::I32) {
        if inputs.iter().any(Val::is_runtime) {
            return float_range(ctx, inputs, dtype);
        }
        let why = format!("the IR's Range makes integers, and this one is {dtype}");
        if let Some(v) = inputs.iter().find(|v| !matches!(v, Val::Const(_))) {
            return Err(not_constant_because(v, "a bound", &why));
        }
    }
    if inputs.iter().any(Val::is_runtime) {
        let mut s = ctx.spec("Range");
        for (name, v) in ["start", "limit", "delta"].into_iter().zip(inputs) {
            s = match v {
                Val::Runtime(_) => s.ints_or_input(name, IntsArg::Runtime(v.clone())),
                _ => match to_ints(&v.value_now()?)?[..] {
                    [one] => s.int(name, one),
                    _ => bail!("Range takes scalars, got '{}'", v.name()),
                },
            };
        }
        return cast_range(ctx, s, dtype);
    }
    let mut bounds = [0i64; 3];
    for (b, v) in bounds.iter_mut().zip(inputs) {
        let ints = to_ints(&v.value_now()?)?;
        let [one] = ints[..] else {
            bail!(
                "Range takes scalars, got '{}' of {} values",
                v.name(),
                ints.len()
            );
        };
        *b = one;
    }
    let [start, limit, delta] = bounds;
    if crate::ir::dim::is_symbolic(start) || crate::ir::dim::is_symbolic(delta) {
        bail!("a Range whose start or delta is a symbolic dim has no IR equivalent");
    }
    let s = ctx
        .spec("Range")
        .int("start", start)
        .int("limit", limit)
        .int("delta", delta);
    cast_range(ctx, s, dtype)
}

/// A float Range with bounds computed at run time, as the spec defines it: the count
/// n = max(ceil((limit − start) / delta), 0), then start + i · delta for i in 0..n (the IR's
/// Range makes the integers i).
fn float_range(ctx: &mut Ctx, inputs: &[Val; 3], dtype: DType) -> Result<Vec<Val>> {
    let [start, limit, delta] = inputs;
    let diff = ctx.emit1(ctx.tmp("Sub", "span").input(limit).input(start))?;
    let steps = ctx.emit1(ctx.tmp("Div", "steps").input(&diff).input(delta))?;
    let steps = ctx.emit1(ctx.tmp("Ceil", "ceil").input(&steps))?;
    let to_int = AttrValue::Type(DType::I64);
    let n = ctx.emit1(ctx.tmp("Cast", "count").attr("to", to_int).input(&steps))?;
    let range = ctx
        .tmp("Range", "index")
        .ints_or_input("limit", IntsArg::Runtime(n));
    let i = ctx.emit1(range)?;
    let i = ctx.emit1(
        ctx.tmp("Cast", "float")
            .attr("to", AttrValue::Type(dtype))
            .input(&i),
    )?;
    let offset = ctx.emit1(ctx.tmp("Mul", "offset").input(&i).input(delta))?;
    Ok(vec![ctx.emit1(ctx.spec("Add").input(start).input(&offset))?])
}

/// Emits the Range `s`, cast to `dtype` when that is int32.
fn cast_range(ctx: &mut Ctx, s: Spec, dtype: DType) -> Result<Vec<Val>> {
    let r = ctx.emit1(s)?;
    if dtype == DType::I64 {
        return Ok(vec![r]);
    }
    let s = ctx
        .spec("Cast")
        .attr("to", AttrValue::Type(dtype))
        .input(&r);
    Ok(vec![ctx.emit1(s)?])
}

/// The number of values of a Range covering `steps` steps, refused when its values (8 bytes at
/// most each) would take more than the fold cap.
fn range_len(steps: f64) -> Result<usize> {
    let n = steps.ceil().max(0.0);
    if !n.is_finite() || n * 8.0 > FOLD_CAP_BYTES as f64 {
        bail!(
            "Range of {n} values is larger than the {} MB a value computed at conversion time may \
             take",
            FOLD_CAP_BYTES >> 20
        );
    }
    Ok(n as usize)
}

fn first(a: &ArrayD<i64>) -> Result<i64> {
    if a.len() != 1 {
        bail!("Range takes scalars, got shape {:?}", a.shape());
    }
    Ok(a.iter().copied().next().expect("one value"))
}
