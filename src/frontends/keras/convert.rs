//! Builds the IR graph from a parsed Keras model: walks each model's calls in dependency order,
//! expands nested models in place (their nodes named `<model>/<layer>`), and hands every other
//! call to its layer function. [`Cx`] is the graph under construction: it types each node as it
//! is added (so layer functions see static shapes, e.g. for "same" padding) and records where
//! each weight comes from.
use super::config::{Arg, KRef, Layer, Model};
use super::h5::{Scope, Var, WeightIndex};
use super::layers::{self, LayerCall, RArg};
use crate::frontends::builder::GraphBuilder;
use crate::ir::{dim, AttrValue, DType, Node, TensorRef, TensorType};
use crate::weights::derived::{Derived, Step};
use crate::weights::Tensor;
use anyhow::{bail, Context, Result};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The graph under construction.
pub struct Cx<'a> {
    /// The shared graph builder (unique names, types as nodes are added).
    pub core: GraphBuilder,
    pub weights: BTreeMap<(String, String), Derived>,
    index: Option<&'a WeightIndex>,
    /// The file was written by Keras 3 (activations such as hard_sigmoid changed meaning).
    pub keras3: bool,
    /// Shapes given with --inputShape (batch excluded), one per top-level input.
    input_shapes: &'a [Vec<i64>],
}

impl<'a> Cx<'a> {
    pub fn new(index: Option<&'a WeightIndex>, keras3: bool, input_shapes: &'a [Vec<i64>]) -> Self {
        Cx {
            core: GraphBuilder::default(),
            weights: BTreeMap::new(),
            index,
            keras3,
            input_shapes,
        }
    }

    /// Adds a node under a fresh name based on `node.name`, typing its outputs.
    pub fn add(&mut self, node: Node) -> Result<TensorRef> {
        self.core.add(node)
    }

    /// Adds `op` on `inputs` with `attrs`, named `name` (made unique).
    pub fn op(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[TensorRef],
        attrs: Vec<(&str, AttrValue)>,
    ) -> Result<TensorRef> {
        let mut node = Node::new(name, op).with_inputs(inputs.iter().cloned());
        for (k, v) in attrs {
            node = node.with_attr(k, v);
        }
        self.add(node)
    }

    /// Type of a tensor already in the graph.
    pub fn ty(&self, r: &TensorRef) -> Result<&TensorType> {
        self.core.ty(r)
    }

    pub fn shape(&self, r: &TensorRef) -> Result<Vec<i64>> {
        Ok(self.ty(r)?.shape.clone())
    }

    pub fn rank(&self, r: &TensorRef) -> Result<usize> {
        Ok(self.ty(r)?.rank())
    }

    /// A float32 constant of `shape`.
    pub fn constant(&mut self, name: &str, shape: Vec<usize>, values: &[f32]) -> Result<TensorRef> {
        let t = Tensor::from_f32(shape.clone(), values)?;
        let r = self.op(
            name,
            "Constant",
            &[],
            vec![
                ("dtype", AttrValue::Type(DType::F32)),
                (
                    "shape",
                    AttrValue::Shape(shape.iter().map(|&d| d as i64).collect()),
                ),
            ],
        )?;
        self.weights
            .insert((r.node.clone(), "value".into()), Derived::literal(t));
        Ok(r)
    }

    /// A scalar float32 constant.
    pub fn scalar(&mut self, name: &str, v: f32) -> Result<TensorRef> {
        self.constant(name, vec![], &[v])
    }

    /// Records that weight `param` of `node` is read from `var` through `steps`.
    pub fn weight(&mut self, node: &TensorRef, param: &str, var: &Var, steps: Vec<Step>) {
        let derived = Derived {
            steps,
            ..Derived::file(&var.path)
        };
        self.derived(node, param, derived);
    }

    /// Records how weight `param` of `node` is made.
    pub fn derived(&mut self, node: &TensorRef, param: &str, derived: Derived) {
        self.weights
            .insert((node.node.clone(), param.to_string()), derived);
    }

    /// Reads a weight variable now (for the few layers whose graph depends on weight values).
    pub fn read(&self, var: &Var) -> Result<Tensor> {
        self.index
            .context("the model needs its weights file")?
            .file
            .read(&var.path)
    }

    fn vars(&self, scope: Option<&Scope>, name: &str, saved_as: &str) -> Result<Vec<Var>> {
        match (self.index, scope) {
            (Some(i), Some(s)) => i.vars(s, name, saved_as),
            _ => Ok(vec![]),
        }
    }
}

/// The error of a model call whose problems are already recorded in the builder (a layer of
/// the nested model failed), so that the caller records no second one.
#[derive(Debug)]
struct AlreadyRecorded;

impl std::fmt::Display for AlreadyRecorded {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a layer of this model could not be converted (listed separately)")
    }
}

impl std::error::Error for AlreadyRecorded {}

/// Converts `model`: its inputs are `bound` (a nested model's call inputs) or new graph inputs;
/// returns its outputs. A layer that fails is recorded as a problem in the builder and the
/// layers that read it are skipped, so every failing layer is reported at once; the outputs
/// are then an [`AlreadyRecorded`] error.
pub fn convert_model(
    cx: &mut Cx,
    model: &Model,
    scope: Option<&Scope>,
    bound: Option<&[TensorRef]>,
    prefix: &str,
) -> Result<Vec<TensorRef>> {
    let saved_as = saved_names(model);
    let mut produced: HashMap<(String, usize), Vec<TensorRef>> = HashMap::new();
    // Layers that failed, or read one that did.
    let mut broken: HashSet<&str> = HashSet::new();
    for (i, input) in model.inputs.iter().enumerate() {
        let layer = model
            .layer(&input.layer)
            .with_context(|| format!("model '{}': no input layer '{}'", model.name, input.layer))?;
        let r = match bound {
            Some(b) => b.get(i).cloned().with_context(|| {
                format!(
                    "model '{}' takes {} inputs, called with {}",
                    model.name,
                    model.inputs.len(),
                    b.len()
                )
            })?,
            None => data_input(cx, layer, prefix, i)?,
        };
        produced.insert((layer.name.clone(), 0), vec![r]);
    }
    let mut pending: Vec<(usize, usize)> = model
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_input())
        .flat_map(|(i, l)| (0..l.calls.len()).map(move |k| (i, k)))
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = vec![];
        for (li, k) in pending {
            let layer = &model.layers[li];
            let call = &layer.calls[k];
            let reads_broken = call
                .args
                .iter()
                .chain(call.kwargs.values())
                .flat_map(Arg::refs)
                .any(|r| broken.contains(r.layer.as_str()));
            if reads_broken {
                broken.insert(&layer.name);
                continue;
            }
            let args: Option<Vec<RArg>> = call
                .args
                .iter()
                .map(|a| resolve(model, &produced, a))
                .collect();
            let kwargs: Option<BTreeMap<String, RArg>> = call
                .kwargs
                .iter()
                .map(|(n, a)| resolve(model, &produced, a).map(|r| (n.clone(), r)))
                .collect();
            let (Some(args), Some(kwargs)) = (args, kwargs) else {
                waiting.push((li, k));
                continue;
            };
            let name = if k == 0 {
                format!("{prefix}{}", layer.name)
            } else {
                format!("{prefix}{}_call{k}", layer.name)
            };
            match convert_call(cx, layer, scope, &saved_as[li], name, args, kwargs) {
                Ok(outs) => {
                    produced.insert((layer.name.clone(), k), outs);
                }
                Err(e) => {
                    if !e.is::<AlreadyRecorded>() {
                        let at = format!("layer '{}' ({})", layer.name, layer.class);
                        cx.core.problem(format!("{at}: {e:#}"));
                    }
                    broken.insert(&layer.name);
                }
            }
        }
        if waiting.len() == before {
            let stuck: Vec<String> = waiting
                .iter()
                .map(|&(li, _)| format!("'{}'", model.layers[li].name))
                .collect();
            bail!(
                "model '{}': the inputs of layers {} are never produced",
                model.name,
                stuck.join(", ")
            );
        }
        pending = waiting;
    }
    if !broken.is_empty() {
        return Err(AlreadyRecorded.into());
    }
    model
        .outputs
        .iter()
        .map(|o| {
            lookup(model, &produced, o, true).with_context(|| {
                format!(
                    "model '{}': output {}:{}:{} is never produced",
                    model.name, o.layer, o.node, o.tensor
                )
            })
        })
        .collect()
}

fn convert_call(
    cx: &mut Cx,
    layer: &Layer,
    scope: Option<&Scope>,
    saved_as: &str,
    name: String,
    args: Vec<RArg>,
    kwargs: BTreeMap<String, RArg>,
) -> Result<Vec<TensorRef>> {
    let inputs: Vec<TensorRef> = args.iter().flat_map(|a| a.tensors()).cloned().collect();
    if let Some(sub) = &layer.model {
        let sub_scope = match (cx.index, scope) {
            (Some(i), Some(s)) => Some(i.nested(s, &layer.name, saved_as)?),
            _ => None,
        };
        return convert_model(
            cx,
            sub,
            sub_scope.as_ref(),
            Some(&inputs),
            &format!("{name}/"),
        );
    }
    let vars = cx.vars(scope, &layer.name, saved_as)?;
    let call = LayerCall {
        name,
        class: &layer.class,
        module: layer.module.as_deref(),
        cfg: layers::Cfg(&layer.config),
        inputs,
        args,
        kwargs,
        vars,
    };
    layers::convert(cx, &call)
}

/// Looks up a produced tensor; `None` while its call has not been converted.
///
/// A nested model built on an Input owns a first node of its own: Keras 2 counts it in every
/// reference, Keras 3 only in `output_layers` and only for Functional models.
fn lookup(
    model: &Model,
    produced: &HashMap<(String, usize), Vec<TensorRef>>,
    r: &KRef,
    output: bool,
) -> Option<TensorRef> {
    let layer = model.layer(&r.layer)?;
    let node = if layer.is_input() {
        0
    } else {
        let skips_first = if model.keras2_nodes {
            layer
                .model
                .as_ref()
                .is_some_and(|m| m.layers.first().is_some_and(Layer::is_input))
        } else {
            output && layer.class == "Functional"
        };
        r.node.checked_sub(skips_first as usize)?
    };
    produced
        .get(&(r.layer.clone(), node))?
        .get(r.tensor)
        .cloned()
}

fn resolve(
    model: &Model,
    produced: &HashMap<(String, usize), Vec<TensorRef>>,
    a: &Arg,
) -> Option<RArg> {
    Some(match a {
        Arg::Tensor(r) => RArg::Tensor(lookup(model, produced, r, false)?),
        Arg::List(items) => RArg::List(
            items
                .iter()
                .map(|i| resolve(model, produced, i))
                .collect::<Option<_>>()?,
        ),
        Arg::Value(v) => RArg::Value(v.clone()),
    })
}

/// The group each layer's weights are saved under in the Keras 3 layout when the file does
/// not record layer names (tf_keras): the class in snake case, numbered from the second
/// layer of a class on (`conv2d`, `conv2d_1`); operations are not saved.
fn saved_names(model: &Model) -> Vec<String> {
    let mut used: HashMap<String, usize> = HashMap::new();
    model
        .layers
        .iter()
        .map(|l| {
            if layers::is_op(&l.class, l.module.as_deref(), &l.config) {
                return String::new();
            }
            let base = snake_case(&l.class);
            match used.get_mut(&base) {
                Some(n) => {
                    *n += 1;
                    format!("{base}_{n}")
                }
                None => {
                    used.insert(base.clone(), 0);
                    base
                }
            }
        })
        .collect()
}

/// Keras's `to_snake_case`: `Conv2D` → `conv2d`, `TFOpLambda` → `tf_op_lambda`,
/// `ReLU` → `re_lu`.
fn snake_case(name: &str) -> String {
    let c: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // "(.)([A-Z][a-z]+)" → "\1_\2", left to right without overlaps.
    let mut step1 = String::new();
    let mut i = 0;
    while i < c.len() {
        if i > 0
            && c[i].is_ascii_uppercase()
            && c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
        {
            step1.push('_');
        }
        step1.push(c[i]);
        i += 1;
    }
    // "([a-z])([A-Z])" → "\1_\2".
    let s: Vec<char> = step1.chars().collect();
    let mut out = String::new();
    for (j, &ch) in s.iter().enumerate() {
        if j > 0 && ch.is_ascii_uppercase() && s[j - 1].is_ascii_lowercase() {
            out.push('_');
        }
        out.push(ch);
    }
    out.to_lowercase()
}

/// Element type named by a Keras dtype (a string or a DTypePolicy object).
pub fn keras_dtype(v: Option<&Json>) -> Result<DType> {
    let name = match v {
        None | Some(Json::Null) => "float32",
        Some(Json::String(s)) => s.as_str(),
        Some(o) => o
            .pointer("/config/name")
            .and_then(Json::as_str)
            .unwrap_or("float32"),
    };
    Ok(match name {
        "float32" | "mixed_float16" | "mixed_bfloat16" => DType::F32,
        "float16" => DType::F16,
        "bfloat16" => DType::BF16,
        "float64" => DType::F64,
        "int8" => DType::I8,
        "int16" => DType::I16,
        "int32" => DType::I32,
        "int64" => DType::I64,
        "uint8" => DType::U8,
        "uint16" => DType::U16,
        "uint32" => DType::U32,
        "uint64" => DType::U64,
        "bool" => DType::Bool,
        other => bail!("unsupported dtype '{other}'"),
    })
}

/// A graph input for an InputLayer.
fn data_input(cx: &mut Cx, layer: &Layer, prefix: &str, index: usize) -> Result<TensorRef> {
    let c = &layer.config;
    let shape = ["batch_input_shape", "batch_shape"]
        .iter()
        .find_map(|k| c.get(*k).filter(|v| !v.is_null()))
        .and_then(Json::as_array)
        .with_context(|| format!("input layer '{}' has no batch_input_shape", layer.name))?;
    // A `None` dim is a symbol: the batch (shared by every input, as Keras requires) or
    // `<input>_<axis>`.
    let mut shape: Vec<i64> = shape
        .iter()
        .enumerate()
        .map(|(axis, d)| match d {
            Json::Null if axis == 0 => Ok(dim::symbol("batch")),
            Json::Null => Ok(dim::symbol(&format!("{}_{axis}", layer.name))),
            _ => d.as_i64().filter(|&v| v >= 0).with_context(|| {
                format!(
                    "input layer '{}': dim {d} is not a size or null",
                    layer.name
                )
            }),
        })
        .collect::<Result<_>>()?;
    if shape.is_empty() {
        bail!(
            "input layer '{}' has an empty batch_input_shape (a Keras input has at least the \
             batch dim)",
            layer.name
        );
    }
    if let Some(given) = cx.input_shapes.get(index) {
        if given.len() + 1 != shape.len() {
            bail!(
                "--inputShape {:?} for input '{}' has {} dims; the model's input has {} besides the batch",
                given,
                layer.name,
                given.len(),
                shape.len() - 1
            );
        }
        shape[1..].copy_from_slice(given);
    }
    let dtype =
        keras_dtype(c.get("dtype")).with_context(|| format!("input layer '{}'", layer.name))?;
    let r = cx.op(
        &format!("{prefix}{}", layer.name),
        "DataInput",
        &[],
        vec![
            ("dtype", AttrValue::Type(dtype)),
            ("shape", AttrValue::Shape(shape)),
        ],
    )?;
    cx.core.graph.inputs.push(r.node.clone());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_matches_keras() {
        for (class, snake) in [
            ("Conv2D", "conv2d"),
            ("TFOpLambda", "tf_op_lambda"),
            ("ReLU", "re_lu"),
            ("BatchNormalization", "batch_normalization"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("LSTM", "lstm"),
            ("InputLayer", "input_layer"),
        ] {
            assert_eq!(snake_case(class), snake);
        }
    }
}
