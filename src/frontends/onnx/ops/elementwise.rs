//! Elementwise ops: activations and unary math, binary arithmetic and comparisons (opset 7's
//! multidirectional broadcasting is NumPy's, as the IR's), variadic Sum/Mean/Max/Min, Clip,
//! Softmax/LogSoftmax, PRelu, Where, Cast, and the inference identities (Identity, Dropout).
use super::{axis, cast_to, scalar, OpFn};
use crate::frontends::onnx::builder::Val;
use crate::frontends::onnx::node::Ctx;
use crate::interp::Value;
use crate::ir::{AttrValue, DType};
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Relu" => |c| unary(c, "Relu"),
        "Sigmoid" => |c| unary(c, "Sigmoid"),
        "Tanh" => |c| unary(c, "Tanh"),
        "HardSwish" => |c| unary(c, "HardSwish"),
        "Mish" => |c| unary(c, "Mish"),
        "Softplus" => |c| unary(c, "Softplus"),
        "Softsign" => |c| unary(c, "Softsign"),
        "Exp" => |c| unary(c, "Exp"),
        "Log" => |c| unary(c, "Log"),
        "Sqrt" => |c| unary(c, "Sqrt"),
        "Reciprocal" => |c| unary(c, "Reciprocal"),
        "Abs" => |c| unary(c, "Abs"),
        "Neg" => |c| unary(c, "Neg"),
        "Sign" => |c| unary(c, "Sign"),
        "Floor" => |c| unary(c, "Floor"),
        "Ceil" => |c| unary(c, "Ceil"),
        "Round" => |c| unary(c, "Round"),
        "Erf" => |c| unary(c, "Erf"),
        "Sin" => |c| unary(c, "Sin"),
        "Cos" => |c| unary(c, "Cos"),
        "Not" => |c| unary(c, "Not"),
        "Identity" => |c| unary(c, "Identity"),
        "LeakyRelu" => |c| with_alpha(c, "LeakyRelu", 0.01),
        "Elu" => |c| with_alpha(c, "Elu", 1.0),
        "ThresholdedRelu" => |c| with_alpha(c, "ThresholdedRelu", 1.0),
        "Selu" => selu,
        "HardSigmoid" => hard_sigmoid,
        "Gelu" => gelu,
        "PRelu" => prelu,
        "Clip" => clip,
        "Softmax" => |c| softmax(c, "Softmax"),
        "LogSoftmax" => |c| softmax(c, "LogSoftmax"),
        "Add" => |c| binary(c, "Add"),
        "Sub" => |c| binary(c, "Sub"),
        "Mul" => |c| binary(c, "Mul"),
        "Div" => |c| binary(c, "Div"),
        "Pow" => pow,
        "Equal" => |c| binary(c, "Equal"),
        "Greater" => |c| binary(c, "Greater"),
        "GreaterOrEqual" => |c| binary(c, "GreaterOrEqual"),
        "Less" => |c| binary(c, "Less"),
        "LessOrEqual" => |c| binary(c, "LessOrEqual"),
        "And" => |c| binary(c, "And"),
        "Or" => |c| binary(c, "Or"),
        "Xor" => |c| binary(c, "Xor"),
        "Sum" => |c| variadic(c, "Add"),
        "Max" => |c| variadic(c, "Maximum"),
        "Min" => |c| variadic(c, "Minimum"),
        "Mean" => mean,
        "Mod" => modulo,
        "Where" => where_op,
        "Cast" => cast,
        "CastLike" => cast_like,
        "Dropout" => dropout,
        _ => return None,
    })
}

fn unary(ctx: &mut Ctx, op: &'static str) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let s = ctx.spec(op).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn with_alpha(ctx: &mut Ctx, op: &'static str, default: f32) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let alpha = ctx.float("alpha", default)?;
    let s = ctx.spec(op).float("alpha", alpha).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn selu(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let alpha = ctx.float("alpha", 1.673_263_2)?;
    let gamma = ctx.float("gamma", 1.050_701)?;
    let s = ctx
        .spec("Selu")
        .float("alpha", alpha)
        .float("gamma", gamma)
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn hard_sigmoid(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let alpha = ctx.float("alpha", 0.2)?;
    let beta = ctx.float("beta", 0.5)?;
    let s = ctx
        .spec("HardSigmoid")
        .float("alpha", alpha)
        .float("beta", beta)
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn gelu(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let approximate = ctx.string("approximate", "none")?;
    if !["none", "tanh"].contains(&approximate.as_str()) {
        bail!("approximate '{approximate}' is not one of none, tanh");
    }
    let s = ctx.spec("Gelu").str("approximate", &approximate).input(&x);
    Ok(vec![ctx.emit1(s)?])
}

fn prelu(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let slope = ctx.input(1)?;
    if slope.is_runtime() {
        // A slope computed at run time: x where x >= 0, else x · slope (broadcast).
        let zero = super::scalar(ctx, "zero", 0.0, x.dtype())?;
        let neg = ctx.emit1(ctx.tmp("Less", "negative").input(&x).input(&zero))?;
        let sloped = ctx.emit1(ctx.tmp("Mul", "sloped").input(&x).input(&slope))?;
        let s = ctx.spec("Where").input(&neg).input(&sloped).input(&x);
        return Ok(vec![ctx.emit1(s)?]);
    }
    let slope = ctx.weight(1, "the slope")?;
    let s = ctx.spec("PRelu").input(&x).weight("slope", slope);
    Ok(vec![ctx.emit1(s)?])
}

/// Clip: bounds are attributes before opset 11 and optional inputs from 11. Bounds known now
/// become the IR Clip's attributes; bounds computed at run time become Maximum/Minimum nodes.
fn clip(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let (lo, hi) = if ctx.opset < 11 {
        (
            ctx.opt_float("min")?.map(Bound::Known),
            ctx.opt_float("max")?.map(Bound::Known),
        )
    } else {
        (bound(ctx, 1)?, bound(ctx, 2)?)
    };
    let mut known = vec![];
    let mut plan: Vec<(&'static str, Option<Val>)> = vec![];
    for (name, b, op) in [("min", lo, "Maximum"), ("max", hi, "Minimum")] {
        match b {
            Some(Bound::Known(v)) => known.push((name, v)),
            Some(Bound::Tensor(t)) => plan.push((op, Some(t))),
            None => {}
        }
    }
    if !known.is_empty() || plan.is_empty() {
        plan.insert(0, ("Clip", None));
    }
    let mut y = x;
    let n = plan.len();
    for (k, (op, bound)) in plan.into_iter().enumerate() {
        let mut s = if k + 1 == n {
            ctx.spec(op)
        } else {
            ctx.tmp(op, &op.to_lowercase())
        };
        if op == "Clip" {
            for (name, v) in &known {
                s = s.float(name, *v);
            }
        }
        s = s.input(&y);
        if let Some(b) = &bound {
            s = s.input(b);
        }
        y = ctx.emit1(s)?;
    }
    Ok(vec![y])
}

enum Bound {
    Known(f32),
    Tensor(Val),
}

fn bound(ctx: &Ctx, i: usize) -> Result<Option<Bound>> {
    Ok(match ctx.opt_input(i) {
        None => None,
        Some(Val::Const(c)) => {
            let v = c.value()?.to_f32();
            if v.len() != 1 {
                bail!("the Clip bound '{}' is not a scalar", c.name);
            }
            Some(Bound::Known(v.iter().copied().next().expect("one value")))
        }
        Some(v) => Some(Bound::Tensor(v)),
    })
}

/// Softmax and LogSoftmax. From opset 13 they normalise one axis (default -1); before, the
/// input is coerced to 2-d at `axis` (default 1) and normalised over everything from there.
fn softmax(ctx: &mut Ctx, op: &'static str) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let rank = x.rank();
    let a = axis(ctx.int("axis", if ctx.opset < 13 { 1 } else { -1 })?, rank)?;
    if ctx.opset >= 13 || a + 1 == rank {
        let s = ctx.spec(op).int("axis", a as i64).input(&x);
        return Ok(vec![ctx.emit1(s)?]);
    }
    // Opset < 13 over axes a..rank: one axis when all the others are 1, else flatten.
    let shape = x.shape();
    let wide: Vec<usize> = (a..rank).filter(|&i| shape[i] != 1).collect();
    if let [only] = wide[..] {
        let s = ctx.spec(op).int("axis", only as i64).input(&x);
        return Ok(vec![ctx.emit1(s)?]);
    }
    if shape.iter().filter(|&&d| d < 0).count() > 1 {
        bail!(
            "{op} before opset 13 normalises axes {a}.. of {} together, which needs the \
             input's dims; pin them with --inputShape",
            x.ty()
        );
    }
    let flat = ctx
        .tmp("Flatten", "flatten")
        .int("axis", a as i64)
        .input(&x);
    let flat = ctx.emit1(flat)?;
    let soft = ctx.tmp(op, "2d").int("axis", 1).input(&flat);
    let soft = ctx.emit1(soft)?;
    let s = ctx.spec("Reshape").ints("shape", shape).input(&soft);
    Ok(vec![ctx.emit1(s)?])
}

fn binary(ctx: &mut Ctx, op: &'static str) -> Result<Vec<Val>> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.dtype() != b.dtype() {
        bail!("operands differ in type: {} and {}", a.ty(), b.ty());
    }
    let s = ctx.spec(op).input(&a).input(&b);
    Ok(vec![ctx.emit1(s)?])
}

/// Pow: the exponent may have its own type (opset 12); it is cast to the base's.
fn pow(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let a = ctx.input(0)?;
    let b = ctx.input(1)?;
    let b = cast_to(ctx, &b, a.dtype(), "exponent")?;
    let s = ctx.spec("Pow").input(&a).input(&b);
    Ok(vec![ctx.emit1(s)?])
}

/// Sum, Max, Min: a chain of binary nodes (one input: Identity).
fn variadic(ctx: &mut Ctx, op: &'static str) -> Result<Vec<Val>> {
    let inputs = ctx.all_inputs()?;
    Ok(vec![chain(ctx, op, &inputs, true)?])
}

fn chain(ctx: &mut Ctx, op: &'static str, inputs: &[Val], last: bool) -> Result<Val> {
    let Some((first, rest)) = inputs.split_first() else {
        bail!("needs at least one input");
    };
    if rest.is_empty() {
        let s = if last {
            ctx.spec("Identity")
        } else {
            ctx.tmp("Identity", "identity")
        };
        return ctx.emit1(s.input(first));
    }
    let mut acc = first.clone();
    for (k, v) in rest.iter().enumerate() {
        let s = if last && k + 1 == rest.len() {
            ctx.spec(op)
        } else {
            ctx.tmp(op, &format!("{}{k}", op.to_lowercase()))
        };
        acc = ctx.emit1(s.input(&acc).input(v))?;
    }
    Ok(acc)
}

fn mean(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let inputs = ctx.all_inputs()?;
    let sum = chain(ctx, "Add", &inputs, false)?;
    let n = scalar(ctx, "count", inputs.len() as f64, sum.dtype())?;
    let s = ctx.spec("Div").input(&sum).input(&n);
    Ok(vec![ctx.emit1(s)?])
}

/// Mod: the IR's Mod, fmod 0 (the divisor's sign) or 1 (C fmod). The spec requires fmod 1 for
/// floats; fmod 0 on floats is read with the same meaning as on integers (NumPy's `mod`, as
/// onnx.reference computes it).
fn modulo(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.dtype() != b.dtype() {
        bail!("operands differ in type: {} and {}", a.ty(), b.ty());
    }
    let fmod = ctx.int("fmod", 0)?;
    if !(0..=1).contains(&fmod) {
        bail!("fmod is {fmod}, not 0 or 1");
    }
    let s = ctx.spec("Mod").int("fmod", fmod).input(&a).input(&b);
    Ok(vec![ctx.emit1(s)?])
}

fn where_op(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let (c, x, y) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let s = ctx.spec("Where").input(&c).input(&x).input(&y);
    Ok(vec![ctx.emit1(s)?])
}

fn cast(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let code = ctx.opt_int("to")?.context("to is missing")?;
    let to = crate::frontends::onnx::tensor::dtype(code as i32)?;
    cast_spec(ctx, &x, to)
}

fn cast_like(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let to = ctx.input(1)?.dtype();
    cast_spec(ctx, &x, to)
}

/// The IR Cast of Cast and CastLike, with `saturate` (opset 19) and `round_mode` (opset 24).
fn cast_spec(ctx: &mut Ctx, x: &Val, to: DType) -> Result<Vec<Val>> {
    let saturate = ctx.int("saturate", 1)? != 0;
    let round_mode = ctx.string("round_mode", "up")?;
    let s = ctx
        .spec("Cast")
        .attr("to", AttrValue::Type(to))
        .attr("saturate", AttrValue::Bool(saturate))
        .str("round_mode", &round_mode)
        .input(x);
    Ok(vec![ctx.emit1(s)?])
}

/// Dropout is the identity at inference, and in training with ratio 0 (nothing is dropped);
/// a training_mode input known to be true with another ratio is refused (its output is random).
fn dropout(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    ctx.ignore(&["ratio", "seed"]);
    if ctx.opset >= 12 {
        if let Some(t) = ctx.const_input(2, "training_mode")? {
            if t.to_f32().iter().any(|&v| v != 0.0) {
                let ratio = ctx
                    .const_floats(1, "the ratio")?
                    .map_or(0.5, |r| r.first().copied().unwrap_or(0.5));
                if ratio != 0.0 {
                    bail!(
                        "training_mode is true with ratio {ratio}, which drops elements at \
                         random; only inference graphs (or ratio 0) are supported"
                    );
                }
            }
        }
    }
    let s = ctx.spec("Identity").input(&x);
    let y = ctx.emit1(s)?;
    if ctx.out_name(1).is_empty() {
        return Ok(vec![y]);
    }
    // The mask of an inference (or ratio 0) Dropout keeps every element.
    let shape = x.shape();
    if shape.iter().any(|&d| d < 0) {
        bail!("output 1 (the mask) is used and the input's shape {shape:?} is not fully known");
    }
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let mask = Value::Bool(ArrayD::from_elem(IxDyn(&dims), true));
    let mask = ctx.b.constant_value(&ctx.out_name(1), &mask, DType::Bool)?;
    Ok(vec![y, mask])
}
