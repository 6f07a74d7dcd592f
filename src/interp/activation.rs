//! Activations and elementwise unary math. Float ops compute in f32 (in place on the input
//! buffer), with f64 where accuracy needs it (erf, softmax sums). NaN inputs propagate.
use super::util::{axis, map_lanes, one, par_chunks, zip_map};
use super::{OpCtx, OpFn, Value};
use anyhow::{bail, Result};
use ndarray::ArrayD;

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Relu" => relu,
        "LeakyRelu" => leaky_relu,
        "PRelu" => prelu,
        "Elu" => elu,
        "Selu" => selu,
        "ThresholdedRelu" => thresholded_relu,
        "Sigmoid" => sigmoid,
        "HardSigmoid" => hard_sigmoid,
        "HardSwish" => hard_swish,
        "SiLU" => silu,
        "Gelu" => gelu,
        "Mish" => mish,
        "Tanh" => tanh,
        "Softplus" => softplus,
        "Softsign" => softsign,
        "Clip" => clip,
        "Softmax" => softmax,
        "LogSoftmax" => log_softmax,
        "Exp" => exp,
        "Log" => log,
        "Sqrt" => sqrt,
        "Rsqrt" => rsqrt,
        "Reciprocal" => reciprocal,
        "Square" => square,
        "Abs" => abs,
        "Neg" => neg,
        "Sign" => sign,
        "Floor" => floor,
        "Ceil" => ceil,
        "Round" => round,
        "Erf" => erf_op,
        "Sin" => sin,
        "Cos" => cos,
        "Not" => not,
        "Identity" => identity,
        _ => return None,
    })
}

/// Applies `f` to every element of a float array, in place and in parallel when large.
pub fn map_inplace(mut x: ArrayD<f32>, f: impl Fn(f32) -> f32 + Sync) -> ArrayD<f32> {
    if let Some(s) = x.as_slice_memory_order_mut() {
        let n = s.len();
        par_chunks(s, 1, n * 4, |_, chunk| {
            chunk.iter_mut().for_each(|v| *v = f(*v));
        });
    } else {
        x.mapv_inplace(f);
    }
    x
}

/// A float-only unary op.
fn float(inputs: Vec<Value>, f: impl Fn(f32) -> f32 + Sync) -> Result<Vec<Value>> {
    let x = one(inputs)?.into_f32()?;
    Ok(vec![Value::F32(map_inplace(x, f))])
}

/// A unary op defined on floats and integers.
fn numeric(
    inputs: Vec<Value>,
    f: impl Fn(f32) -> f32 + Sync,
    g: impl Fn(i64) -> i64,
) -> Result<Vec<Value>> {
    Ok(vec![match one(inputs)? {
        Value::F32(x) => Value::F32(map_inplace(x, f)),
        Value::I64(mut x) => {
            x.mapv_inplace(g);
            Value::I64(x)
        }
        v => bail!("expects a numeric tensor, got {}", v.describe()),
    }])
}

fn relu(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(i, |v| if v < 0.0 { 0.0 } else { v }, |v| v.max(0))
}

fn leaky_relu(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let alpha = ctx.attrs.float("alpha")?;
    float(i, move |v| if v >= 0.0 { v } else { alpha * v })
}

fn prelu(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let x = one(i)?.into_f32()?;
    let slope = ctx.weight("slope")?;
    let slope = slope.as_f32()?;
    let y = zip_map(&x, slope, |v, s| if v >= 0.0 { v } else { s * v })?;
    if y.shape() != x.shape() {
        bail!(
            "slope of shape {:?} broadcasts the input {:?} to {:?}",
            slope.shape(),
            x.shape(),
            y.shape()
        );
    }
    Ok(vec![Value::F32(y)])
}

fn elu(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let alpha = ctx.attrs.float("alpha")?;
    float(i, move |v| if v > 0.0 { v } else { alpha * v.exp_m1() })
}

fn selu(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let (alpha, gamma) = (ctx.attrs.float("alpha")?, ctx.attrs.float("gamma")?);
    float(i, move |v| {
        gamma * if v > 0.0 { v } else { alpha * v.exp_m1() }
    })
}

fn thresholded_relu(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let alpha = ctx.attrs.float("alpha")?;
    float(i, move |v| if v > alpha || v.is_nan() { v } else { 0.0 })
}

fn sigmoid_f(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

fn sigmoid(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, sigmoid_f)
}

fn clamp01(v: f32) -> f32 {
    v.clamp(0.0, 1.0)
}

fn hard_sigmoid(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let (alpha, beta) = (ctx.attrs.float("alpha")?, ctx.attrs.float("beta")?);
    float(i, move |v| clamp01(alpha * v + beta))
}

fn hard_swish(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, |v| v * clamp01(v / 6.0 + 0.5))
}

fn silu(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, |v| v * sigmoid_f(v))
}

fn gelu(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    if ctx.attrs.str("approximate")? == "tanh" {
        let k = (2.0 / std::f64::consts::PI).sqrt();
        float(i, move |v| {
            let x = v as f64;
            (0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())) as f32
        })
    } else {
        float(i, |v| {
            let x = v as f64;
            (0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))) as f32
        })
    }
}

/// log(1 + exp(x)) without overflow.
fn softplus_f(v: f32) -> f32 {
    let x = v as f64;
    (x.max(0.0) + (-x.abs()).exp().ln_1p()) as f32
}

fn mish(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, |v| v * softplus_f(v).tanh())
}

fn tanh(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, f32::tanh)
}

fn softplus(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, softplus_f)
}

fn softsign(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, |v| v / (1.0 + v.abs()))
}

fn clip(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let lo = ctx.attrs.opt_float("min")?;
    let hi = ctx.attrs.opt_float("max")?;
    let (flo, fhi) = (lo.unwrap_or(f32::NEG_INFINITY), hi.unwrap_or(f32::INFINITY));
    let ilo = lo.map_or(i64::MIN, |v| v.ceil() as i64);
    let ihi = hi.map_or(i64::MAX, |v| v.floor() as i64);
    numeric(
        i,
        move |v| {
            if v < flo {
                flo
            } else if v > fhi {
                fhi
            } else {
                v
            }
        },
        move |v| v.max(ilo).min(ihi),
    )
}

/// Softmax (or log-softmax) of one lane.
fn softmax_lane(src: &[f32], dst: &mut [f32], log: bool) {
    let m = src.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let sum: f64 = src.iter().map(|&v| ((v - m) as f64).exp()).sum();
    if log {
        let ls = sum.ln();
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = ((s - m) as f64 - ls) as f32;
        }
    } else {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = (((s - m) as f64).exp() / sum) as f32;
        }
    }
}

fn softmax_like(ctx: &OpCtx, i: Vec<Value>, log: bool) -> Result<Vec<Value>> {
    let x = one(i)?.into_f32()?;
    let ax = axis(ctx.attrs.int("axis")?, x.ndim())?;
    let n = x.shape()[ax];
    let y = map_lanes(x.view(), ax, n, |s, d| softmax_lane(s, d, log));
    Ok(vec![Value::F32(y)])
}

fn softmax(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    softmax_like(ctx, i, false)
}

fn log_softmax(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    softmax_like(ctx, i, true)
}

fn exp(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, f32::exp)
}

fn log(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, f32::ln)
}

fn sqrt(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, f32::sqrt)
}

fn rsqrt(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, |v| 1.0 / v.sqrt())
}

fn reciprocal(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, |v| 1.0 / v)
}

fn square(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(i, |v| v * v, |v| v.wrapping_mul(v))
}

fn abs(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(i, f32::abs, i64::wrapping_abs)
}

fn neg(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(i, |v| -v, i64::wrapping_neg)
}

fn sign(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(
        i,
        |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v * 0.0 // 0 stays 0, NaN stays NaN
            }
        },
        i64::signum,
    )
}

fn floor(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(i, f32::floor, |v| v)
}

fn ceil(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(i, f32::ceil, |v| v)
}

fn round(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    numeric(i, f32::round_ties_even, |v| v)
}

/// The error function, to about 1e-15: Taylor series below 3, continued fraction above.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 3.0 {
        let x2 = a * a;
        let (mut sum, mut term, mut n) = (0.0f64, a, 0.0f64);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x2 / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut f = a;
        for k in (1..=60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    r.copysign(x)
}

fn erf_op(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, |v| erf(v as f64) as f32)
}

fn sin(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, f32::sin)
}

fn cos(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    float(i, f32::cos)
}

fn not(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let mut x = one(i)?.into_bool()?;
    x.mapv_inplace(|v| !v);
    Ok(vec![Value::Bool(x)])
}

fn identity(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    Ok(vec![one(i)?])
}

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.9, 0.999_958_902_121_900_4),
            (3.5, 0.999_999_256_901_627_7),
            (-1.5, -0.966_105_146_475_310_7),
        ] {
            assert!((erf(x) - want).abs() < 1e-13, "erf({x}) = {}", erf(x));
        }
    }
}
