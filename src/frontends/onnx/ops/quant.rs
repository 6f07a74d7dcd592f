//! Linear (de)quantization, composed from IR ops: DequantizeLinear is (x − zero point) · scale,
//! QuantizeLinear is saturate(round(x / scale) + zero point) to integers (Clip, then Cast) and
//! Cast(x / scale + zero point) to the narrow floats (the Cast rounds to nearest even and
//! saturates as the `saturate` attribute says). Per-axis parameters (opset 13)
//! are reshaped to broadcast along `axis`; on constant weights everything folds to a float
//! constant. Blocked quantization (opset 21 `block_size`) is refused.
use super::{axis, cast_to, OpFn};
use crate::frontends::onnx::builder::Val;
use crate::frontends::onnx::node::Ctx;
use crate::frontends::onnx::tensor;
use crate::ir::{AttrValue, DType};
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "DequantizeLinear" => dequantize,
        "QuantizeLinear" => quantize,
        _ => return None,
    })
}

/// A scale or zero point of `x`: per tensor as is, per axis reshaped to broadcast on `axis`.
fn along_axis(ctx: &mut Ctx, v: &Val, x: &Val, axis_attr: i64, name: &str) -> Result<Val> {
    let rank = x.rank();
    if v.rank() == 0 || v.shape() == [1] || rank <= 1 {
        return Ok(v.clone());
    }
    if v.rank() != 1 {
        bail!("the {name} {} is neither per tensor nor per axis", v.ty());
    }
    let a = axis(axis_attr, rank)?;
    let mut shape = vec![1; rank];
    shape[a] = v.shape()[0];
    let s = ctx
        .tmp("Reshape", &format!("{name}_axis"))
        .ints("shape", shape)
        .input(v);
    ctx.emit1(s)
}

/// The `axis` attribute; fails on blocked quantization.
fn quant_axis(ctx: &Ctx) -> Result<i64> {
    if ctx.int("block_size", 0)? != 0 {
        bail!("blocked quantization (block_size) has no IR equivalent");
    }
    ctx.int("axis", 1)
}

fn dequantize(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let scale = ctx.input(1)?;
    let a = quant_axis(ctx)?;
    let float = scale.dtype();
    let out = match ctx.opt_int("output_dtype")? {
        Some(code) if code != 0 => tensor::dtype(code as i32)?,
        _ => float,
    };
    let mut y = cast_to(ctx, &x, float, "x_float")?;
    if let Some(zp) = ctx.opt_input(2) {
        let zp = cast_to(ctx, &zp, float, "zero_point_float")?;
        let zp = along_axis(ctx, &zp, &x, a, "zero_point")?;
        let s = ctx.tmp("Sub", "centered").input(&y).input(&zp);
        y = ctx.emit1(s)?;
    }
    let scale = along_axis(ctx, &scale, &x, a, "scale")?;
    let s = if out == float {
        ctx.spec("Mul")
    } else {
        ctx.tmp("Mul", "scaled")
    };
    y = ctx.emit1(s.input(&y).input(&scale))?;
    if out != float {
        let s = ctx.spec("Cast").attr("to", AttrValue::Type(out)).input(&y);
        y = ctx.emit1(s)?;
    }
    Ok(vec![y])
}

fn quantize(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let scale = ctx.input(1)?;
    let a = quant_axis(ctx)?;
    let saturate = ctx.int("saturate", 1)? != 0;
    let zp = ctx.opt_input(2);
    let out = match (&zp, ctx.opt_int("output_dtype")?) {
        (Some(z), _) => z.dtype(),
        (None, Some(code)) if code != 0 => tensor::dtype(code as i32)?,
        _ => DType::U8,
    };
    let float = out.is_minifloat() && out != DType::F8E8M0;
    let range = match out {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::U16 => (0.0, 65535.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::I32 => (i32::MIN as f32, i32::MAX as f32),
        DType::U4 => (0.0, 15.0),
        DType::I4 => (-8.0, 7.0),
        DType::U2 => (0.0, 3.0),
        DType::I2 => (-2.0, 1.0),
        _ if float => (0.0, 0.0),
        d => bail!("quantizing to {d} is not supported"),
    };
    let scale = along_axis(ctx, &scale, &x, a, "scale")?;
    let s = ctx.tmp("Div", "scaled").input(&x).input(&scale);
    let mut y = ctx.emit1(s)?;
    if !float {
        let s = ctx.tmp("Round", "rounded").input(&y);
        y = ctx.emit1(s)?;
    }
    if let Some(zp) = zp {
        let zp = cast_to(ctx, &zp, x.dtype(), "zero_point_float")?;
        let zp = along_axis(ctx, &zp, &x, a, "zero_point")?;
        let s = ctx.tmp("Add", "shifted").input(&y).input(&zp);
        y = ctx.emit1(s)?;
    }
    if !float {
        let s = ctx
            .tmp("Clip", "saturated")
            .float("min", range.0)
            .float("max", range.1)
            .input(&y);
        y = ctx.emit1(s)?;
    }
    let s = ctx
        .spec("Cast")
        .attr("to", AttrValue::Type(out))
        .attr("saturate", AttrValue::Bool(saturate))
        .input(&y);
    Ok(vec![ctx.emit1(s)?])
}
