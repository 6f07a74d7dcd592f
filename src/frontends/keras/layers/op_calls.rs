//! Operation calls recorded in functional models: Keras 2's TFOpLambda / SlicingOpLambda (a TF
//! function such as `tf.math.add` or `tf.__operators__.getitem` with its arguments) and Keras
//! 3's operation nodes (`keras.src.ops.numpy.Add` from `x + 3.0`). Both name tables map to one
//! [`Op`] and one converter that reads the call's arguments, whatever the op's family.
use super::super::convert::Cx;
use super::{activation, ints_of, shape, LayerCall, RArg};
use crate::ir::{AttrValue, TensorRef};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value as Json;

/// How an operation maps to the IR.
#[derive(Clone, Copy)]
pub enum Op {
    /// Elementwise binary IR op on (x, y).
    Binary(&'static str),
    /// Elementwise unary IR op on x.
    Unary(&'static str),
    /// A Keras activation applied to x.
    Act(&'static str),
    Concat,
    Reshape,
    Transpose,
    ExpandDims,
    Squeeze,
    Reduce(&'static str),
    Clip,
    Softmax,
    GetItem,
    MatMul,
    Identity,
}

/// TF functions a TFOpLambda may call (its config `function`).
const TF_FUNCTIONS: &[(&str, Op)] = &[
    ("__operators__.add", Op::Binary("Add")),
    ("math.add", Op::Binary("Add")),
    ("math.subtract", Op::Binary("Sub")),
    ("math.multiply", Op::Binary("Mul")),
    ("math.truediv", Op::Binary("Div")),
    ("math.divide", Op::Binary("Div")),
    ("math.maximum", Op::Binary("Maximum")),
    ("math.minimum", Op::Binary("Minimum")),
    ("math.pow", Op::Binary("Pow")),
    ("nn.relu", Op::Act("relu")),
    ("nn.relu6", Op::Act("relu6")),
    ("math.sigmoid", Op::Act("sigmoid")),
    ("nn.sigmoid", Op::Act("sigmoid")),
    ("math.tanh", Op::Act("tanh")),
    ("nn.silu", Op::Act("silu")),
    ("nn.swish", Op::Act("silu")),
    ("nn.gelu", Op::Act("gelu")),
    ("nn.elu", Op::Act("elu")),
    ("nn.selu", Op::Act("selu")),
    ("math.softplus", Op::Act("softplus")),
    ("nn.softplus", Op::Act("softplus")),
    ("math.exp", Op::Act("exponential")),
    ("math.sqrt", Op::Unary("Sqrt")),
    ("math.negative", Op::Unary("Neg")),
    ("math.abs", Op::Unary("Abs")),
    ("math.square", Op::Unary("Square")),
    ("math.log", Op::Unary("Log")),
    ("math.rsqrt", Op::Unary("Rsqrt")),
    ("nn.softmax", Op::Softmax),
    ("concat", Op::Concat),
    ("reshape", Op::Reshape),
    ("transpose", Op::Transpose),
    ("compat.v1.transpose", Op::Transpose),
    ("expand_dims", Op::ExpandDims),
    ("compat.v1.squeeze", Op::Squeeze),
    ("squeeze", Op::Squeeze),
    ("math.reduce_mean", Op::Reduce("ReduceMean")),
    ("math.reduce_sum", Op::Reduce("ReduceSum")),
    ("math.reduce_max", Op::Reduce("ReduceMax")),
    ("math.reduce_min", Op::Reduce("ReduceMin")),
    ("clip_by_value", Op::Clip),
    ("__operators__.getitem", Op::GetItem),
    ("linalg.matmul", Op::MatMul),
    ("matmul", Op::MatMul),
    ("identity", Op::Identity),
];

/// Keras 3 operation classes (module `keras.src.ops.*`).
pub const KERAS_OPS: &[(&str, Op)] = &[
    ("Add", Op::Binary("Add")),
    ("Subtract", Op::Binary("Sub")),
    ("Multiply", Op::Binary("Mul")),
    ("Divide", Op::Binary("Div")),
    ("TrueDivide", Op::Binary("Div")),
    ("Maximum", Op::Binary("Maximum")),
    ("Minimum", Op::Binary("Minimum")),
    ("Power", Op::Binary("Pow")),
    ("Relu", Op::Act("relu")),
    ("Relu6", Op::Act("relu6")),
    ("Sigmoid", Op::Act("sigmoid")),
    ("Tanh", Op::Act("tanh")),
    ("Silu", Op::Act("silu")),
    ("Swish", Op::Act("silu")),
    ("Gelu", Op::Act("gelu")),
    ("HardSigmoid", Op::Act("hard_sigmoid")),
    ("HardSilu", Op::Act("hard_silu")),
    ("Softplus", Op::Act("softplus")),
    ("Exp", Op::Act("exponential")),
    ("Sqrt", Op::Unary("Sqrt")),
    ("Negative", Op::Unary("Neg")),
    ("Absolute", Op::Unary("Abs")),
    ("Abs", Op::Unary("Abs")),
    ("Square", Op::Unary("Square")),
    ("Log", Op::Unary("Log")),
    ("Softmax", Op::Softmax),
    ("Concatenate", Op::Concat),
    ("Reshape", Op::Reshape),
    ("Transpose", Op::Transpose),
    ("ExpandDims", Op::ExpandDims),
    ("Squeeze", Op::Squeeze),
    ("Mean", Op::Reduce("ReduceMean")),
    ("Sum", Op::Reduce("ReduceSum")),
    ("Max", Op::Reduce("ReduceMax")),
    ("Min", Op::Reduce("ReduceMin")),
    ("Clip", Op::Clip),
    ("GetItem", Op::GetItem),
    ("Matmul", Op::MatMul),
];

/// Whether a TFOpLambda `function` is supported.
pub fn tf_function_known(f: &str) -> bool {
    TF_FUNCTIONS.iter().any(|(n, _)| *n == f)
}

/// Arguments of an operation: positional `args` and keywords, looked up by name or position.
struct OpArgs<'a> {
    l: &'a LayerCall<'a>,
}

impl OpArgs<'_> {
    fn get(&self, key: &str, pos: usize) -> Option<&RArg> {
        self.l.arg(key, pos)
    }
    /// A literal from the keywords, the positional arguments or the config.
    fn literal(&self, keys: &[&str], pos: usize) -> Option<Json> {
        keys.iter()
            .find_map(|k| self.l.kwargs.get(*k).and_then(RArg::value))
            .or_else(|| self.l.args.get(pos).and_then(RArg::value))
            .or_else(|| keys.iter().find_map(|k| self.l.cfg.get(k)))
            .filter(|v| !v.is_null())
            .cloned()
    }
}

/// A tensor operand: a tensor argument, or a constant made from a literal.
fn operand(cx: &mut Cx, name: &str, a: &RArg) -> Result<TensorRef> {
    match a {
        RArg::Tensor(t) => Ok(t.clone()),
        RArg::Value(v) => {
            let (shape, values) = literal(v)?;
            cx.constant(name, shape, &values)
        }
        RArg::List(_) => bail!("a list is not a tensor operand"),
    }
}

/// Shape and values of a (nested) list of numbers.
fn literal(v: &Json) -> Result<(Vec<usize>, Vec<f32>)> {
    match v {
        Json::Number(n) => Ok((vec![], vec![n.as_f64().context("not a number")? as f32])),
        Json::Bool(b) => Ok((vec![], vec![*b as u8 as f32])),
        Json::Array(items) => {
            let parts: Vec<(Vec<usize>, Vec<f32>)> =
                items.iter().map(literal).collect::<Result<_>>()?;
            let inner = parts.first().map(|p| p.0.clone()).unwrap_or_default();
            if parts.iter().any(|p| p.0 != inner) {
                bail!("ragged literal {v}");
            }
            let mut shape = vec![items.len()];
            shape.extend(inner);
            Ok((shape, parts.into_iter().flat_map(|p| p.1).collect()))
        }
        other => bail!("{other} is not a numeric literal"),
    }
}

fn int_list(v: &Json) -> Result<Vec<i64>> {
    ints_of(v, 0)
}

/// Converts one operation call.
fn convert_op(cx: &mut Cx, l: &LayerCall, op: Op, what: &str) -> Result<Vec<TensorRef>> {
    let a = OpArgs { l };
    let first = || -> Result<TensorRef> {
        a.get("x", 0)
            .and_then(|x| x.tensors().first().cloned().cloned())
            .ok_or_else(|| anyhow!("{what}: no tensor input"))
    };
    let y = match op {
        Op::Unary(ir) => cx.op(&l.name, ir, &[first()?], vec![])?,
        Op::Binary(ir) => {
            let x = a.get("x", 0).context("no first operand")?;
            let y = ["y", "x2", "b"]
                .iter()
                .find_map(|k| l.kwargs.get(*k))
                .or_else(|| l.args.get(1))
                .context("no second operand")?;
            let x = operand(cx, &l.sub("x"), x)?;
            let y = operand(cx, &l.sub("y"), y)?;
            cx.op(&l.name, ir, &[x, y], vec![])?
        }
        Op::Act(act) => activation::apply(cx, &first()?, act, &l.name)?,
        Op::Identity => cx.op(&l.name, "Identity", &[first()?], vec![])?,
        Op::Softmax => {
            let axis = match a.literal(&["axis", "dim"], 1) {
                None => -1,
                Some(v) => v.as_i64().ok_or_else(|| {
                    anyhow!("softmax over axes {v} is not supported (one axis only)")
                })?,
            };
            cx.op(
                &l.name,
                "Softmax",
                &[first()?],
                vec![("axis", AttrValue::Int(axis))],
            )?
        }
        Op::Concat => {
            let xs: Vec<TensorRef> = l
                .args
                .first()
                .map(|a| a.tensors().into_iter().cloned().collect())
                .unwrap_or_default();
            let axis = a
                .literal(&["axis"], 1)
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            cx.op(&l.name, "Concat", &xs, vec![("axis", AttrValue::Int(axis))])?
        }
        Op::Reshape => {
            let shape = int_list(
                &a.literal(&["shape", "newshape", "new_shape"], 1)
                    .context("no target shape")?,
            )?;
            let x = first()?;
            let batch = cx.shape(&x)?.first().copied();
            if !shape.first().is_some_and(|&d| d == -1 || Some(d) == batch) {
                bail!("{what}: shape across the batch axis ({shape:?}) is not supported");
            }
            let target = &shape[1..];
            shape::reshape_to(cx, &l.name, x, target)?
        }
        Op::Transpose => {
            let x = first()?;
            let perm = match a.literal(&["perm", "axes"], 1) {
                Some(p) => int_list(&p)?,
                None => (0..cx.rank(&x)? as i64).rev().collect(),
            };
            cx.op(
                &l.name,
                "Transpose",
                &[x],
                vec![("perm", AttrValue::Ints(perm))],
            )?
        }
        Op::ExpandDims => {
            let x = first()?;
            let axis = a
                .literal(&["axis"], 1)
                .and_then(|v| v.as_i64())
                .context("no axis")?;
            let rank = cx.rank(&x)? as i64 + 1;
            let axis = if axis < 0 { axis + rank } else { axis };
            cx.op(
                &l.name,
                "Unsqueeze",
                &[x],
                vec![("axes", AttrValue::Ints(vec![axis]))],
            )?
        }
        Op::Squeeze => {
            let axes = match a.literal(&["axis"], 1) {
                Some(v) => int_list(&v)?,
                None => vec![],
            };
            cx.op(
                &l.name,
                "Squeeze",
                &[first()?],
                vec![("axes", AttrValue::Ints(axes))],
            )?
        }
        Op::Reduce(ir) => {
            let axes = match a.literal(&["axis"], 1) {
                Some(v) => int_list(&v)?,
                None => vec![],
            };
            let keep = a
                .literal(&["keepdims"], 2)
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            cx.op(
                &l.name,
                ir,
                &[first()?],
                vec![
                    ("axes", AttrValue::Ints(axes)),
                    ("keepdims", AttrValue::Bool(keep)),
                ],
            )?
        }
        Op::Clip => {
            let lo = a
                .literal(&["clip_value_min", "x_min"], 1)
                .and_then(|v| v.as_f64());
            let hi = a
                .literal(&["clip_value_max", "x_max"], 2)
                .and_then(|v| v.as_f64());
            let mut attrs = vec![];
            if let Some(lo) = lo {
                attrs.push(("min", AttrValue::Float(lo as f32)));
            }
            if let Some(hi) = hi {
                attrs.push(("max", AttrValue::Float(hi as f32)));
            }
            cx.op(&l.name, "Clip", &[first()?], attrs)?
        }
        Op::MatMul => {
            let x = first()?;
            let y = ["b", "y", "x2"]
                .iter()
                .find_map(|k| l.kwargs.get(*k))
                .or_else(|| l.args.get(1))
                .context("no second operand")?;
            let y = operand(cx, &l.sub("b"), y)?;
            cx.op(&l.name, "MatMul", &[x, y], vec![])?
        }
        Op::GetItem => {
            let spec = a.literal(&["slice_spec", "key"], 1).context("no slice")?;
            get_item(cx, l, first()?, &spec)?
        }
    };
    Ok(vec![y])
}

/// `x[spec]`: slices (`{"start", "stop", "step"}`), integer indices (the axis is dropped),
/// `null` (tf.newaxis) and `"..."` (Ellipsis).
fn get_item(cx: &mut Cx, l: &LayerCall, x: TensorRef, spec: &Json) -> Result<TensorRef> {
    let items: Vec<Json> = match spec {
        Json::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let rank = cx.rank(&x)?;
    let consumed = items.iter().filter(|i| !i.is_null() && *i != "...").count();
    let (mut starts, mut ends, mut axes, mut steps) = (vec![], vec![], vec![], vec![]);
    let (mut squeeze, mut newaxes) = (vec![], vec![]);
    let mut axis = 0usize;
    let mut out_axis = 0i64;
    for item in &items {
        match item {
            Json::Null => {
                newaxes.push(out_axis);
                out_axis += 1;
            }
            Json::String(s) if s == "..." || s == "Ellipsis" => {
                let skip = rank.checked_sub(consumed).context("too many indices")?;
                axis += skip;
                out_axis += skip as i64;
            }
            Json::Number(n) => {
                let i = n.as_i64().context("a non-integer index")?;
                starts.push(i);
                ends.push(if i == -1 { i64::MAX } else { i + 1 });
                axes.push(axis as i64);
                steps.push(1);
                squeeze.push(axis as i64);
                axis += 1;
            }
            Json::Object(o) => {
                let get = |k: &str| o.get(k).and_then(Json::as_i64);
                let step = get("step").unwrap_or(1);
                let (lo, hi) = if step > 0 {
                    (0, i64::MAX)
                } else {
                    (-1, -i64::MAX)
                };
                starts.push(get("start").unwrap_or(lo));
                ends.push(get("stop").unwrap_or(hi));
                axes.push(axis as i64);
                steps.push(step);
                axis += 1;
                out_axis += 1;
            }
            other => bail!("unsupported index {other}"),
        }
    }
    let mut y = cx.op(
        &l.sub("slice"),
        "Slice",
        &[x],
        vec![
            ("starts", AttrValue::Ints(starts)),
            ("ends", AttrValue::Ints(ends)),
            ("axes", AttrValue::Ints(axes)),
            ("steps", AttrValue::Ints(steps)),
        ],
    )?;
    if !squeeze.is_empty() {
        y = cx.op(
            &l.sub("squeeze"),
            "Squeeze",
            &[y],
            vec![("axes", AttrValue::Ints(squeeze))],
        )?;
    }
    if !newaxes.is_empty() {
        y = cx.op(
            &l.sub("newaxis"),
            "Unsqueeze",
            &[y],
            vec![("axes", AttrValue::Ints(newaxes))],
        )?;
    }
    cx.op(&l.name, "Identity", &[y], vec![])
}

/// TFOpLambda and SlicingOpLambda.
pub fn tf_op_lambda(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let f = l.cfg.str_or("function", "")?;
    let op = TF_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == f)
        .map(|(_, o)| *o)
        .ok_or_else(|| anyhow!("tf.{f} is not supported"))?;
    convert_op(cx, l, op, &format!("tf.{f}"))
}

/// A Keras 3 operation node.
pub fn keras_op(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let op = KERAS_OPS
        .iter()
        .find(|(n, _)| *n == l.class)
        .map(|(_, o)| *o)
        .ok_or_else(|| anyhow!("operation {} is not supported", l.class))?;
    convert_op(cx, l, op, l.class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_keep_their_shape() {
        assert_eq!(literal(&json!(3.0)).unwrap(), (vec![], vec![3.0]));
        assert_eq!(literal(&json!([[1, 2], [3, 4]])).unwrap().0, vec![2, 2]);
        assert!(literal(&json!([[1], [2, 3]])).is_err());
    }

    #[test]
    fn every_table_entry_is_distinct() {
        let mut names: Vec<&str> = TF_FUNCTIONS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TF_FUNCTIONS.len());
    }
}
