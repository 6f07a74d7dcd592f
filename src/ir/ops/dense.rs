//! Fully connected layers, matrix products and embeddings.
use super::shape_rules::broadcast;
use super::*;
use crate::ir::types::AttrKind as K;

pub const OPS: &[OpDef] = &[
    OpDef {
        name: "FullyConnected",
        family: Family::Dense,
        doc: "y = x · W (+ b) over the last axis of an input of any rank ≥ 2 (Keras Dense).",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[
            attr("units", K::Int, Default::Required, "output features"),
            attr(
                "use_bias",
                K::Bool,
                Default::Bool(false),
                "whether the `bias` weight exists",
            ),
        ],
        weights: &[
            weight("weights", "[in, out]").shaped(fully_connected_weights_shape),
            optional_weight("bias", "[out]; present when use_bias").shaped(units_shape),
        ],
        layout: Layout::FullyConnected,
        infer: infer_fully_connected,
    },
    OpDef {
        name: "MatMul",
        family: Family::Dense,
        doc: "Matrix product with NumPy matmul semantics (batch dims broadcast, 1-d promoted).",
        inputs: inputs(&["a", "b"]),
        outputs: ONE_OUTPUT,
        attrs: &[],
        weights: &[],
        layout: Layout::Fixed,
        infer: infer_matmul,
    },
    OpDef {
        name: "Gemm",
        family: Family::Dense,
        doc: "y = alpha · op(a) · op(b) + beta · c on 2-d inputs, op = optional transpose.",
        inputs: Inputs::Fixed {
            names: &["a", "b", "c"],
            required: 2,
        },
        outputs: ONE_OUTPUT,
        attrs: &[
            attr(
                "alpha",
                K::Float,
                Default::Float(1.0),
                "scale of the product",
            ),
            attr("beta", K::Float, Default::Float(1.0), "scale of c"),
            attr(
                "trans_a",
                K::Bool,
                Default::Bool(false),
                "transpose a first",
            ),
            attr(
                "trans_b",
                K::Bool,
                Default::Bool(false),
                "transpose b first",
            ),
        ],
        weights: &[],
        layout: Layout::Fixed,
        infer: infer_gemm,
    },
    OpDef {
        name: "Embedding",
        family: Family::Dense,
        doc: "Looks up rows of a [input_dim, output_dim] table by integer index.",
        inputs: inputs(&["indices"]),
        outputs: ONE_OUTPUT,
        attrs: &[
            attr("input_dim", K::Int, Default::Required, "vocabulary size"),
            attr("output_dim", K::Int, Default::Required, "embedding size"),
        ],
        weights: &[weight("weights", "[input_dim, output_dim]").shaped(embedding_shape)],
        layout: Layout::Fixed,
        infer: infer_embedding,
    },
];

fn fully_connected_weights_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    let x = ctx.input(0)?;
    Ok(vec![
        *x.shape.last().unwrap_or(&-1),
        ctx.attrs.int("units")?,
    ])
}

fn units_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    Ok(vec![ctx.attrs.int("units")?])
}

fn embedding_shape(ctx: &InferCtx) -> Result<Vec<i64>> {
    Ok(vec![
        ctx.attrs.int("input_dim")?,
        ctx.attrs.int("output_dim")?,
    ])
}

fn infer_fully_connected(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    if x.rank() < 2 {
        bail!("expects an input of rank 2 or more, got {x}");
    }
    let mut shape = x.shape.clone();
    *shape.last_mut().expect("rank >= 2") = ctx.attrs.int("units")?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_matmul(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.rank() == 0 || b.rank() == 0 {
        bail!("MatMul needs inputs of rank 1 or more, got {a} and {b}");
    }
    let mut sa = a.shape.clone();
    let mut sb = b.shape.clone();
    let (pa, pb) = (sa.len() == 1, sb.len() == 1);
    if pa {
        sa.insert(0, 1);
    }
    if pb {
        sb.push(1);
    }
    let (m, ka) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (kb, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if ka >= 0 && kb >= 0 && ka != kb {
        bail!("MatMul inner dims differ: {a} · {b}");
    }
    let mut shape = broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    if !pa {
        shape.push(m);
    }
    if !pb {
        shape.push(n);
    }
    Ok(vec![TensorType::new(a.dtype, shape)])
}

fn infer_gemm(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.rank() != 2 || b.rank() != 2 {
        bail!("Gemm needs 2-d inputs, got {a} and {b}");
    }
    let m = if ctx.attrs.bool("trans_a")? {
        a.shape[1]
    } else {
        a.shape[0]
    };
    let n = if ctx.attrs.bool("trans_b")? {
        b.shape[0]
    } else {
        b.shape[1]
    };
    if let Some(c) = ctx.inputs.get(2) {
        broadcast(&[m, n], &c.shape)?;
    }
    Ok(vec![TensorType::new(a.dtype, vec![m, n])])
}

fn infer_embedding(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let ids = ctx.input(0)?;
    if ids.dtype.is_float() {
        bail!("Embedding indices must be integers, got {ids}");
    }
    let mut shape = ids.shape.clone();
    shape.push(ctx.attrs.int("output_dim")?);
    Ok(vec![TensorType::f32(shape)])
}
