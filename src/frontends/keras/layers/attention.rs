//! MultiHeadAttention decomposed into FullyConnected projections, Reshape/Transpose to heads,
//! MatMul, Softmax and the output projection. The einsum kernels ([F, heads, dim] and
//! [heads, dim, out]) keep their bytes as 2-d [F, heads·dim] / [heads·dim, out] matrices.
use super::super::convert::Cx;
use super::super::h5::Var;
use super::LayerCall;
use crate::ir::{AttrValue, TensorRef};
use crate::weights::derived::Step;
use anyhow::{bail, Context, Result};

/// The kernel and bias variables of one projection (`query` in Keras 2 and legacy h5,
/// `query_dense` in Keras 3 weight files).
fn projection<'a>(l: &'a LayerCall, names: &[&str]) -> Vec<&'a Var> {
    l.vars
        .iter()
        .filter(|v| names.iter().any(|n| v.local.split('/').next() == Some(n)))
        .collect()
}

struct Heads {
    heads: i64,
    use_bias: bool,
}

impl Heads {
    /// x [N, T, F] → FullyConnected to heads·dim → [N, T, heads, dim].
    fn project(
        &self,
        cx: &mut Cx,
        l: &LayerCall,
        what: &str,
        x: &TensorRef,
        dim: i64,
        vars: &[&Var],
    ) -> Result<TensorRef> {
        let shape = cx.shape(x)?;
        let [_, t, f] = shape[..] else {
            bail!("{what} must be [batch, time, features], got {shape:?}");
        };
        if f < 0 {
            bail!("{what} needs a known feature size");
        }
        let units = self.heads * dim;
        let fc = cx.op(
            &l.sub(what),
            "FullyConnected",
            std::slice::from_ref(x),
            vec![
                ("units", AttrValue::Int(units)),
                ("use_bias", AttrValue::Bool(self.use_bias)),
            ],
        )?;
        let kernel = vars
            .first()
            .with_context(|| format!("the {what} kernel is missing"))?;
        cx.weight(
            &fc,
            "weights",
            kernel,
            vec![Step::Reshape(vec![f as usize, units as usize])],
        );
        if self.use_bias {
            let bias = vars
                .get(1)
                .with_context(|| format!("the {what} bias is missing"))?;
            cx.weight(&fc, "bias", bias, vec![Step::Reshape(vec![units as usize])]);
        }
        cx.op(
            &l.sub(&format!("{what}_heads")),
            "Reshape",
            &[fc],
            vec![("shape", AttrValue::Ints(vec![0, t, self.heads, dim]))],
        )
    }
}

fn transpose(cx: &mut Cx, name: &str, x: TensorRef, perm: &[i64]) -> Result<TensorRef> {
    cx.op(
        name,
        "Transpose",
        &[x],
        vec![("perm", AttrValue::Ints(perm.to_vec()))],
    )
}

pub fn multi_head_attention(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let tensor = |key: &str, pos: usize| l.arg(key, pos).and_then(|a| a.tensor()).cloned();
    let query = tensor("query", 0).context("no query tensor")?;
    let value = tensor("value", 1).context("no value tensor")?;
    let key = tensor("key", 2).unwrap_or_else(|| value.clone());
    if l.arg("attention_mask", 3).is_some() {
        bail!("attention_mask is not supported");
    }
    let flag = |k: &str| {
        l.kwargs
            .get(k)
            .and_then(|a| a.value())
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    if flag("use_causal_mask") {
        bail!("use_causal_mask is not supported");
    }
    match l.cfg.get("attention_axes") {
        None => {}
        Some(a) if super::ints_of(a, 0)? == [1] || super::ints_of(a, 0)? == [-2] => {}
        Some(a) => bail!("attention_axes {a} is not supported"),
    }
    let h = Heads {
        heads: l.cfg.int("num_heads")?,
        use_bias: l.cfg.bool_or("use_bias", true)?,
    };
    let dk = l.cfg.int("key_dim")?;
    let dv = l.cfg.int_or("value_dim", dk)?;
    let q = h.project(
        cx,
        l,
        "query",
        &query,
        dk,
        &projection(l, &["query", "query_dense"]),
    )?;
    let k = h.project(
        cx,
        l,
        "key",
        &key,
        dk,
        &projection(l, &["key", "key_dense"]),
    )?;
    let v = h.project(
        cx,
        l,
        "value",
        &value,
        dv,
        &projection(l, &["value", "value_dense"]),
    )?;
    let q = transpose(cx, &l.sub("query_t"), q, &[0, 2, 1, 3])?;
    let scale = cx.scalar(&l.sub("scale"), 1.0 / (dk as f32).sqrt())?;
    let q = cx.op(&l.sub("query_scaled"), "Mul", &[q, scale], vec![])?;
    let k = transpose(cx, &l.sub("key_t"), k, &[0, 2, 3, 1])?;
    let v = transpose(cx, &l.sub("value_t"), v, &[0, 2, 1, 3])?;
    let logits = cx.op(&l.sub("logits"), "MatMul", &[q, k], vec![])?;
    let scores = cx.op(
        &l.sub("scores"),
        "Softmax",
        &[logits],
        vec![("axis", AttrValue::Int(-1))],
    )?;
    let ctx = cx.op(&l.sub("context"), "MatMul", &[scores.clone(), v], vec![])?;
    let ctx = transpose(cx, &l.sub("context_t"), ctx, &[0, 2, 1, 3])?;
    let t = cx.shape(&query)?[1];
    let ctx = cx.op(
        &l.sub("context_merged"),
        "Reshape",
        &[ctx],
        vec![("shape", AttrValue::Ints(vec![0, t, h.heads * dv]))],
    )?;
    let out_dim = match l.cfg.get("output_shape") {
        None => *cx.shape(&query)?.last().expect("rank 3"),
        Some(v) => match &super::ints_of(v, 0)?[..] {
            [d] => *d,
            other => bail!("output_shape {other:?} is not supported"),
        },
    };
    let out_vars = projection(l, &["attention_output", "output_dense"]);
    let y = cx.op(
        &l.name,
        "FullyConnected",
        &[ctx],
        vec![
            ("units", AttrValue::Int(out_dim)),
            ("use_bias", AttrValue::Bool(h.use_bias)),
        ],
    )?;
    let kernel = out_vars.first().context("the output kernel is missing")?;
    cx.weight(
        &y,
        "weights",
        kernel,
        vec![Step::Reshape(vec![
            (h.heads * dv) as usize,
            out_dim as usize,
        ])],
    );
    if h.use_bias {
        cx.weight(
            &y,
            "bias",
            out_vars.get(1).context("the output bias is missing")?,
            vec![],
        );
    }
    let mut out = vec![y];
    if flag("return_attention_scores") {
        out.push(scores);
    }
    Ok(out)
}
