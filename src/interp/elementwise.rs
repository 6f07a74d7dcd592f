//! Elementwise binary ops with NumPy broadcasting, comparisons and selection. Both operands
//! must be of the same kind (float, integer or bool); no implicit promotion.
use super::util::{broadcast_shape, take, zip_assign, zip_map};
use super::{OpCtx, OpFn, Value};
use anyhow::{bail, Result};
use ndarray::{ArrayD, IxDyn, Zip};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Add" => add,
        "Sub" => sub,
        "Mul" => mul,
        "Div" => div,
        "Pow" => pow,
        "Mod" => modulo,
        "Maximum" => maximum,
        "Minimum" => minimum,
        "Equal" => equal,
        "Greater" => greater,
        "GreaterOrEqual" => greater_or_equal,
        "Less" => less,
        "LessOrEqual" => less_or_equal,
        "And" => and,
        "Or" => or,
        "Xor" => xor,
        "Where" => where_op,
        _ => return None,
    })
}

/// `f(a, b)` with broadcasting, reusing `a`'s buffer when it has the result's shape.
fn apply<T: Copy>(mut a: ArrayD<T>, b: &ArrayD<T>, f: impl FnMut(T, T) -> T) -> Result<ArrayD<T>> {
    if broadcast_shape(a.shape(), b.shape())? == a.shape() {
        zip_assign(&mut a, b, f);
        Ok(a)
    } else {
        zip_map(&a, b, f)
    }
}

/// An arithmetic op on two floats or two integers.
fn arith(
    inputs: Vec<Value>,
    f: impl Fn(f32, f32) -> f32,
    g: impl Fn(i64, i64) -> Result<i64>,
) -> Result<Vec<Value>> {
    let [a, b] = take(inputs)?;
    Ok(vec![match (a, b) {
        (Value::F32(a), Value::F32(b)) => Value::F32(apply(a, &b, f)?),
        (Value::I64(a), Value::I64(b)) => {
            // Integer ops can fail (division by zero); collect the first error.
            let mut err = None;
            let r = apply(a, &b, |x, y| match g(x, y) {
                Ok(v) => v,
                Err(e) => {
                    err.get_or_insert(e);
                    0
                }
            })?;
            if let Some(e) = err {
                return Err(e);
            }
            Value::I64(r)
        }
        (a, b) => bail!(
            "needs two float or two integer tensors, got {} and {}",
            a.describe(),
            b.describe()
        ),
    }])
}

fn add(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arith(i, |a, b| a + b, |a, b| Ok(a.wrapping_add(b)))
}

fn sub(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arith(i, |a, b| a - b, |a, b| Ok(a.wrapping_sub(b)))
}

fn mul(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arith(i, |a, b| a * b, |a, b| Ok(a.wrapping_mul(b)))
}

fn div(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arith(
        i,
        |a, b| a / b,
        |a, b| {
            if b == 0 {
                bail!("integer division by zero");
            }
            Ok(a.wrapping_div(b))
        },
    )
}

fn pow(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arith(
        i,
        |a, b| (a as f64).powf(b as f64) as f32,
        |a, b| {
            if b < 0 {
                bail!("integers cannot be raised to the negative power {b}");
            }
            Ok(a.wrapping_pow(b.min(u32::MAX as i64) as u32))
        },
    )
}

/// Mod: the remainder, with the divisor's sign (fmod 0) or the dividend's (fmod 1).
fn modulo(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let fmod = match ctx.attrs.int("fmod")? {
        0 => false,
        1 => true,
        v => bail!("fmod is {v}, not 0 or 1"),
    };
    // A nonzero remainder whose sign differs from the divisor's moves by one divisor.
    let divisor_sign = move |r: f64, b: f64| {
        if !fmod && r != 0.0 && (r < 0.0) != (b < 0.0) {
            r + b
        } else {
            r
        }
    };
    arith(
        i,
        |a, b| divisor_sign((a as f64) % (b as f64), b as f64) as f32,
        |a, b| {
            if b == 0 {
                bail!("integer modulo by zero");
            }
            let r = a.wrapping_rem(b);
            Ok(if !fmod && r != 0 && (r < 0) != (b < 0) {
                r + b
            } else {
                r
            })
        },
    )
}

fn maximum(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arith(
        i,
        |a, b| if a.is_nan() || a >= b { a } else { b },
        |a, b| Ok(a.max(b)),
    )
}

fn minimum(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    arith(
        i,
        |a, b| if a.is_nan() || a <= b { a } else { b },
        |a, b| Ok(a.min(b)),
    )
}

/// A comparison of two tensors of the same kind.
fn compare(inputs: Vec<Value>, f: fn(std::cmp::Ordering) -> bool) -> Result<Vec<Value>> {
    let [a, b] = take(inputs)?;
    let cmp = |x: Option<std::cmp::Ordering>| x.is_some_and(f);
    Ok(vec![Value::Bool(match (&a, &b) {
        (Value::F32(a), Value::F32(b)) => zip_map(a, b, |x, y| cmp(x.partial_cmp(&y)))?,
        (Value::I64(a), Value::I64(b)) => zip_map(a, b, |x, y| cmp(x.partial_cmp(&y)))?,
        (Value::Bool(a), Value::Bool(b)) => zip_map(a, b, |x, y| cmp(x.partial_cmp(&y)))?,
        _ => bail!("cannot compare {} with {}", a.describe(), b.describe()),
    })])
}

fn equal(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    compare(i, |o| o.is_eq())
}

fn greater(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    compare(i, |o| o.is_gt())
}

fn greater_or_equal(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    compare(i, |o| o.is_ge())
}

fn less(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    compare(i, |o| o.is_lt())
}

fn less_or_equal(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    compare(i, |o| o.is_le())
}

fn logical(inputs: Vec<Value>, f: fn(bool, bool) -> bool) -> Result<Vec<Value>> {
    let [a, b] = take(inputs)?;
    let (a, b) = (a.into_bool()?, b.into_bool()?);
    Ok(vec![Value::Bool(apply(a, &b, f)?)])
}

fn and(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    logical(i, |a, b| a && b)
}

fn or(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    logical(i, |a, b| a || b)
}

fn xor(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    logical(i, |a, b| a ^ b)
}

fn select<T: Copy>(c: &ArrayD<bool>, x: &ArrayD<T>, y: &ArrayD<T>) -> Result<ArrayD<T>> {
    let shape = broadcast_shape(&broadcast_shape(c.shape(), x.shape())?, y.shape())?;
    let dim = IxDyn(&shape);
    let (cv, xv, yv) = (
        c.broadcast(dim.clone()).expect("broadcast"),
        x.broadcast(dim.clone()).expect("broadcast"),
        y.broadcast(dim).expect("broadcast"),
    );
    Ok(Zip::from(&cv)
        .and(&xv)
        .and(&yv)
        .map_collect(|&c, &a, &b| if c { a } else { b }))
}

fn where_op(_: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    let [c, x, y] = take(i)?;
    let c = c.into_bool()?;
    Ok(vec![match (x, y) {
        (Value::F32(x), Value::F32(y)) => Value::F32(select(&c, &x, &y)?),
        (Value::I64(x), Value::I64(y)) => Value::I64(select(&c, &x, &y)?),
        (Value::Bool(x), Value::Bool(y)) => Value::Bool(select(&c, &x, &y)?),
        (x, y) => bail!(
            "x and y differ in kind: {} and {}",
            x.describe(),
            y.describe()
        ),
    }])
}
