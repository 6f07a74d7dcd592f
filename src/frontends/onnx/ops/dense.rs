//! Gemm and MatMul. A product with a constant 2-d right operand becomes `FullyConnected`
//! (weights [in, out]: Gemm's transB, alpha and a bias-shaped C are folded into the weights);
//! anything else keeps the general op with `Constant` operands. Einsum maps when it is a
//! permutation, a sum or a batched matrix product.
use super::{cast_to, scalar, OpFn};
use crate::frontends::onnx::builder::Val;
use crate::frontends::onnx::node::Ctx;
use crate::interp::Value;
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "Gemm" => gemm,
        "MatMul" => matmul,
        "Einsum" => einsum,
        _ => return None,
    })
}

fn gemm(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let a = ctx.input(0)?;
    let b = ctx.input(1)?;
    let c = ctx.opt_input(2);
    let alpha = ctx.float("alpha", 1.0)?;
    let beta = ctx.float("beta", 1.0)?;
    let trans_a = ctx.int("transA", 0)? == 1;
    let trans_b = ctx.int("transB", 0)? == 1;
    if let (false, Val::Const(w)) = (trans_a, &b) {
        let wdims = w.shape();
        if wdims.len() != 2 {
            bail!("B must be 2-d, got {}", b.ty());
        }
        let units = if trans_b { wdims[0] } else { wdims[1] };
        let bias_like = match &c {
            None => true,
            Some(Val::Const(c)) => {
                let d = c.shape();
                d.iter().product::<i64>() == units && d.len() <= 2 && d.last() == Some(&units)
                    || d.iter().all(|&x| x == 1)
            }
            Some(_) => false,
        };
        if bias_like {
            return Ok(vec![fully_connected(
                ctx,
                &a,
                &b,
                trans_b,
                alpha,
                c.as_ref().map(|c| (c, beta)),
                units,
            )?]);
        }
    }
    let mut s = ctx
        .spec("Gemm")
        .float("alpha", alpha)
        .float("beta", beta)
        .flag("trans_a", trans_a)
        .flag("trans_b", trans_b)
        .input(&a)
        .input(&b);
    if let Some(c) = &c {
        s = s.input(c);
    }
    Ok(vec![ctx.emit1(s)?])
}

/// `FullyConnected` computing `alpha · x · op(w) + beta · c` (w and c constant; c of `units`
/// elements or one).
fn fully_connected(
    ctx: &mut Ctx,
    x: &Val,
    w: &Val,
    trans_w: bool,
    alpha: f32,
    bias: Option<(&Val, f32)>,
    units: i64,
) -> Result<Val> {
    let mut w = w.clone();
    if trans_w {
        let t = ctx
            .tmp("Transpose", "weights_t")
            .ints("perm", vec![1, 0])
            .input(&w);
        w = ctx.emit1(t)?;
    }
    if alpha != 1.0 {
        let k = scalar(ctx, "alpha", alpha as f64, w.dtype())?;
        let m = ctx.tmp("Mul", "weights_alpha").input(&w).input(&k);
        w = ctx.emit1(m)?;
    }
    let mut s = ctx
        .spec("FullyConnected")
        .int("units", units)
        .input(x)
        .weight("weights", const_data(&w)?);
    if let Some((c, beta)) = bias {
        let mut c = cast_to(ctx, c, w.dtype(), "bias_cast")?;
        let e = ctx
            .tmp("Expand", "bias_expand")
            .ints("shape", vec![units])
            .input(&c);
        c = ctx.emit1(e)?;
        if c.rank() != 1 {
            let r = ctx
                .tmp("Reshape", "bias_1d")
                .ints("shape", vec![units])
                .input(&c);
            c = ctx.emit1(r)?;
        }
        if beta != 1.0 {
            let k = scalar(ctx, "beta", beta as f64, c.dtype())?;
            let m = ctx.tmp("Mul", "bias_beta").input(&c).input(&k);
            c = ctx.emit1(m)?;
        }
        s = s.flag("use_bias", true).weight("bias", const_data(&c)?);
    }
    ctx.emit1(s)
}

fn const_data(v: &Val) -> Result<crate::frontends::onnx::tensor::Lazy> {
    match v {
        Val::Const(c) => Ok(c.data.clone()),
        _ => bail!("internal: a folded weight is not constant"),
    }
}

/// MatMul: `FullyConnected` when the right operand is a constant matrix and the left has
/// rank 2 or more; `MatMul` otherwise.
fn matmul(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let a = ctx.input(0)?;
    let b = ctx.input(1)?;
    if let Val::Const(w) = &b {
        let dims = w.shape();
        if dims.len() == 2 && a.rank() >= 2 && a.is_runtime() {
            return Ok(vec![fully_connected(
                ctx, &a, &b, false, 1.0, None, dims[1],
            )?]);
        }
    }
    let s = ctx.spec("MatMul").input(&a).input(&b);
    Ok(vec![ctx.emit1(s)?])
}

/// Einsum in the forms exporters write: one operand (a permutation, with summed labels
/// reduced), or two operands that make a (broadcast, batched) matrix product over exactly one
/// contracted label. A label repeated within an operand takes its diagonal first. Outer
/// products, several contracted labels and labels summed out of one operand of two are refused.
fn einsum(ctx: &mut Ctx) -> Result<Vec<Val>> {
    let eq = ctx
        .opt_string("equation")?
        .context("equation is missing")?
        .replace(' ', "");
    let inputs = ctx.all_inputs()?;
    let (terms, out) = parse_einsum(&eq, &inputs)?;
    let mut diag = vec![];
    for (k, (x, t)) in inputs.iter().zip(&terms).enumerate() {
        diag.push(diagonals(ctx, x, t, k)?);
    }
    let (inputs, terms): (Vec<Val>, Vec<Vec<char>>) = diag.into_iter().unzip();
    match (&inputs[..], &terms[..]) {
        ([x], [t]) => Ok(vec![einsum_one(ctx, x, t, &out)?]),
        ([a, b], [ta, tb]) => Ok(vec![einsum_two(ctx, [a, b], [ta, tb], &out)?]),
        _ => bail!(
            "Einsum '{eq}' with {} operands is not supported",
            inputs.len()
        ),
    }
}

/// The labels of each operand and of the output; "..." becomes one label per broadcast dim.
fn parse_einsum(eq: &str, inputs: &[Val]) -> Result<(Vec<Vec<char>>, Vec<char>)> {
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq, None),
    };
    let parts: Vec<&str> = lhs.split(',').collect();
    if parts.len() != inputs.len() {
        bail!(
            "equation '{eq}' names {} operands, the node has {}",
            parts.len(),
            inputs.len()
        );
    }
    // Ellipsis dims get labels from the private-use area, numbered from the right so that
    // operands with fewer of them broadcast.
    let ell = |n: usize| -> Vec<char> {
        (0..n)
            .rev()
            .map(|i| char::from_u32(0xE000 + i as u32).expect("valid char"))
            .collect()
    };
    let mut max_ell = 0;
    let mut terms = vec![];
    for (p, v) in parts.iter().zip(inputs) {
        let letters = p.replace("...", "").chars().count();
        let mut t = vec![];
        if let Some((pre, post)) = p.split_once("...") {
            let n = v
                .rank()
                .checked_sub(letters)
                .context("the equation has more labels than dims")?;
            max_ell = max_ell.max(n);
            t.extend(pre.chars());
            t.extend(ell(n));
            t.extend(post.chars());
        } else {
            t.extend(p.chars());
        }
        if t.len() != v.rank() {
            bail!("'{p}' does not fit operand {}", v.ty());
        }
        terms.push(t);
    }
    let out = match rhs {
        Some(r) => {
            let mut o = vec![];
            if let Some((pre, post)) = r.split_once("...") {
                o.extend(pre.chars());
                o.extend(ell(max_ell));
                o.extend(post.chars());
            } else {
                o.extend(r.chars());
            }
            o
        }
        None => {
            let all: Vec<char> = terms.iter().flatten().copied().collect();
            let mut once: Vec<char> = all
                .iter()
                .copied()
                .filter(|c| all.iter().filter(|d| *d == c).count() == 1 && c.is_ascii())
                .collect();
            once.sort_unstable();
            let mut o = ell(max_ell);
            o.extend(once);
            o
        }
    };
    Ok((terms, out))
}

/// Operand `k` with each label repeated in its term `t` ('ii') reduced to the diagonal: the
/// product with a mask that is 1 where the two indices agree, summed over the second one.
fn diagonals(ctx: &mut Ctx, x: &Val, t: &[char], k: usize) -> Result<(Val, Vec<char>)> {
    let (mut y, mut labels) = (x.clone(), t.to_vec());
    while let Some((p, q)) = (0..labels.len())
        .flat_map(|q| (0..q).map(move |p| (p, q)))
        .find(|&(p, q)| labels[p] == labels[q])
    {
        let shape = y.shape();
        let n = shape[p];
        if n < 0 || shape[q] != n {
            bail!(
                "the diagonal of axes {p} and {q} of {} needs them known and equal",
                y.ty()
            );
        }
        let mut dims = vec![1; labels.len()];
        (dims[p], dims[q]) = (n as usize, n as usize);
        let eye = ArrayD::from_shape_fn(IxDyn(&dims), |i| i[p] == i[q]);
        let eye = Value::Bool(eye);
        let mask = if y.dtype().is_float() {
            Value::F32(eye.to_f32())
        } else {
            Value::I64(eye.to_f32().mapv(|v| v as i64))
        };
        let mask = ctx.constant(&format!("diag{k}_{p}_{q}"), &mask, y.dtype())?;
        let s = ctx
            .tmp("Mul", &format!("diag{k}_{p}_{q}_masked"))
            .input(&y)
            .input(&mask);
        let masked = ctx.emit1(s)?;
        let s = ctx
            .tmp("ReduceSum", &format!("diag{k}_{p}_{q}_sum"))
            .ints("axes", vec![q as i64])
            .flag("keepdims", false)
            .input(&masked);
        y = ctx.emit1(s)?;
        labels.remove(q);
    }
    Ok((y, labels))
}

/// Position of each of `want` in `have`.
fn positions(have: &[char], want: &[char]) -> Vec<i64> {
    want.iter()
        .map(|c| have.iter().position(|h| h == c).expect("label present") as i64)
        .collect()
}

/// A Transpose to `perm` (nothing when it is the identity); the last step gets the node's name.
fn permute(ctx: &mut Ctx, x: &Val, perm: Vec<i64>, suffix: &str, last: bool) -> Result<Val> {
    if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
        if last {
            let s = ctx.spec("Identity").input(x);
            return ctx.emit1(s);
        }
        return Ok(x.clone());
    }
    let s = if last {
        ctx.spec("Transpose")
    } else {
        ctx.tmp("Transpose", suffix)
    };
    ctx.emit1(s.ints("perm", perm).input(x))
}

fn einsum_one(ctx: &mut Ctx, x: &Val, t: &[char], out: &[char]) -> Result<Val> {
    let summed: Vec<i64> = (0..t.len() as i64)
        .filter(|&i| !out.contains(&t[i as usize]))
        .collect();
    let mut y = x.clone();
    let mut labels = t.to_vec();
    if !summed.is_empty() {
        let s = ctx
            .tmp("ReduceSum", "sum")
            .ints("axes", summed)
            .flag("keepdims", false)
            .input(&y);
        y = ctx.emit1(s)?;
        labels.retain(|c| out.contains(c));
    }
    if labels.len() != out.len() {
        bail!("the output labels are not a subset of the operand's");
    }
    permute(ctx, &y, positions(&labels, out), "perm", true)
}

fn einsum_two(ctx: &mut Ctx, v: [&Val; 2], t: [&Vec<char>; 2], out: &[char]) -> Result<Val> {
    let (ta, tb) = (t[0], t[1]);
    let pick =
        |f: &dyn Fn(&char) -> bool| -> Vec<char> { out.iter().copied().filter(|c| f(c)).collect() };
    let batch = pick(&|c| ta.contains(c) && tb.contains(c));
    let m = pick(&|c| ta.contains(c) && !tb.contains(c));
    let n = pick(&|c| tb.contains(c) && !ta.contains(c));
    let k: Vec<char> = ta
        .iter()
        .copied()
        .filter(|c| tb.contains(c) && !out.contains(c))
        .collect();
    let lone = ta
        .iter()
        .chain(tb.iter())
        .any(|c| !out.contains(c) && !k.contains(c));
    if k.len() != 1
        || lone
        || (m.len() > 1 && n.len() > 1)
        || batch.len() + m.len() + n.len() != out.len()
    {
        bail!(
            "this Einsum is not a (broadcast) matrix product over one contracted label, the only \
             two-operand form supported"
        );
    }
    // A: [m extra..., batch..., m row, k]; B: [n extra..., batch..., k, n col]. MatMul
    // broadcasts the extra dims of one operand against the other's absent ones.
    let (m_extra, m_row) = m.split_at(m.len().saturating_sub(1));
    let (n_extra, n_col) = n.split_at(n.len().saturating_sub(1));
    let order_a: Vec<char> = [m_extra, &batch, m_row, &k].concat();
    let order_b: Vec<char> = [n_extra, &batch, &k, n_col].concat();
    let mut a = permute(ctx, v[0], positions(ta, &order_a), "a_t", false)?;
    let mut b = permute(ctx, v[1], positions(tb, &order_b), "b_t", false)?;
    if m_row.is_empty() {
        let at = (m_extra.len() + batch.len()) as i64;
        let s = ctx
            .tmp("Unsqueeze", "a_row")
            .ints("axes", vec![at])
            .input(&a);
        a = ctx.emit1(s)?;
    }
    if n_col.is_empty() {
        let at = (n_extra.len() + batch.len() + 1) as i64;
        let s = ctx
            .tmp("Unsqueeze", "b_col")
            .ints("axes", vec![at])
            .input(&b);
        b = ctx.emit1(s)?;
    }
    let s = ctx.tmp("MatMul", "matmul").input(&a).input(&b);
    let mut y = ctx.emit1(s)?;
    let lead = if m_extra.is_empty() { n_extra } else { m_extra };
    let rank = (lead.len() + batch.len() + 2) as i64;
    let mut squeeze = vec![];
    if m_row.is_empty() {
        squeeze.push(rank - 2);
    }
    if n_col.is_empty() {
        squeeze.push(rank - 1);
    }
    if !squeeze.is_empty() {
        let s = ctx
            .tmp("Squeeze", "squeeze")
            .ints("axes", squeeze)
            .input(&y);
        y = ctx.emit1(s)?;
    }
    let labels: Vec<char> = [lead, &batch, m_row, n_col].concat();
    permute(ctx, &y, positions(&labels, out), "perm", true)
}
