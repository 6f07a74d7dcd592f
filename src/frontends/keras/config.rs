//! The model config (`model_config` attribute, `config.json`, `model.to_json()`) parsed into
//! models, layers and calls.
//!
//! Both serialisations of a call are read: Keras 2's `inbound_nodes` as lists (each tensor
//! `[layer, node, tensor, kwargs]`, the call's other arguments in `kwargs`, a TFOpLambda's single
//! tensor not wrapped in a list) and Keras 3's as `{"args": [...], "kwargs": {...}}` with
//! tensors `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}`.
//! A Sequential model becomes a chain of single calls. Nested models stay nested (`Layer::model`).
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashSet};

/// A tensor produced by a layer call: output `tensor` of call `node` of `layer`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KRef {
    pub layer: String,
    pub node: usize,
    pub tensor: usize,
}

/// An argument of a call: a tensor, a list of arguments, or a literal.
#[derive(Clone, Debug)]
pub enum Arg {
    Tensor(KRef),
    List(Vec<Arg>),
    Value(Json),
}

impl Arg {
    /// Every tensor reference in the argument.
    pub fn refs(&self) -> Vec<&KRef> {
        match self {
            Arg::Tensor(r) => vec![r],
            Arg::List(items) => items.iter().flat_map(Arg::refs).collect(),
            Arg::Value(_) => vec![],
        }
    }
}

/// One call of a layer: positional arguments (the first is the layer's inputs) and keywords.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub args: Vec<Arg>,
    pub kwargs: BTreeMap<String, Arg>,
}

/// A layer of a model, with its calls within that model.
#[derive(Clone, Debug)]
pub struct Layer {
    pub class: String,
    /// Keras 3's `module` (`keras.layers`, `keras.src.ops.numpy`, ...), when given.
    pub module: Option<String>,
    pub name: String,
    /// The layer's `config` object.
    pub config: Json,
    pub calls: Vec<Call>,
    /// For a nested Functional or Sequential model, its parsed config.
    pub model: Option<Box<Model>>,
}

impl Layer {
    pub fn is_input(&self) -> bool {
        self.class == "InputLayer"
    }
}

/// A Functional or Sequential model.
#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    pub layers: Vec<Layer>,
    pub inputs: Vec<KRef>,
    pub outputs: Vec<KRef>,
    /// Keras 2 list-style nodes: a nested model built on an Input counts its own first node,
    /// so references to it are one higher than its position in `inbound_nodes`.
    pub keras2_nodes: bool,
}

impl Model {
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// Model classes that hold other layers.
pub fn is_model_class(class: &str) -> bool {
    matches!(class, "Functional" | "Model" | "Sequential")
}

/// Parses a whole `{"class_name": ..., "config": ...}` model object.
pub fn parse_model(json: &Json) -> Result<Model> {
    let class = json
        .get("class_name")
        .and_then(Json::as_str)
        .context("the model config has no class_name")?;
    let config = json
        .get("config")
        .context("the model config has no config")?;
    match class {
        "Sequential" => parse_sequential(config),
        "Functional" | "Model" => parse_functional(config),
        other => bail!(
            "the model is a {other}, not a Functional or Sequential model: subclassed models \
             keep their architecture in Python code, which cannot be read"
        ),
    }
}

fn name_of(config: &Json, fallback: &str) -> String {
    config
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or(fallback)
        .to_string()
}

/// A layer entry without its calls; nested models are parsed.
fn parse_layer_head(entry: &Json) -> Result<Layer> {
    let class = entry
        .get("class_name")
        .and_then(Json::as_str)
        .context("a layer has no class_name")?
        .to_string();
    let config = entry.get("config").cloned().unwrap_or(Json::Null);
    let name = entry
        .get("name")
        .and_then(Json::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| name_of(&config, &class));
    let model = if is_model_class(&class) {
        Some(Box::new(
            parse_model(entry).with_context(|| format!("nested model '{name}'"))?,
        ))
    } else {
        None
    };
    Ok(Layer {
        class,
        module: entry
            .get("module")
            .and_then(Json::as_str)
            .map(str::to_string),
        name,
        config,
        calls: vec![],
        model,
    })
}

fn parse_functional(config: &Json) -> Result<Model> {
    let name = name_of(config, "model");
    let entries = config
        .get("layers")
        .and_then(Json::as_array)
        .with_context(|| format!("model '{name}' has no layers list"))?;
    let mut layers = Vec::with_capacity(entries.len());
    let mut keras2 = false;
    let mut names = HashSet::new();
    for e in entries {
        let mut layer = parse_layer_head(e)?;
        let nodes = e.get("inbound_nodes").and_then(Json::as_array);
        for node in nodes.into_iter().flatten() {
            let call = if node.is_object() {
                parse_call_v3(node)
            } else {
                keras2 = true;
                parse_call_v2(node)
            };
            layer.calls.push(call.with_context(|| {
                format!("layer '{}' ({}): inbound nodes", layer.name, layer.class)
            })?);
        }
        if !names.insert(layer.name.clone()) {
            bail!(
                "model '{name}' has two layers named '{}': layer names must be unique",
                layer.name
            );
        }
        layers.push(layer);
    }
    Ok(Model {
        inputs: refs(config.get("input_layers"))
            .with_context(|| format!("model '{name}': input_layers"))?,
        outputs: refs(config.get("output_layers"))
            .with_context(|| format!("model '{name}': output_layers"))?,
        name,
        layers,
        keras2_nodes: keras2,
    })
}

/// `input_layers` / `output_layers`: `[name, node, tensor]` or a list of them.
fn refs(v: Option<&Json>) -> Result<Vec<KRef>> {
    let list = v.and_then(Json::as_array).context("missing")?;
    if list.first().is_some_and(Json::is_string) {
        return Ok(vec![kref(list)?]);
    }
    list.iter()
        .map(|r| kref(r.as_array().context("expected [layer, node, tensor]")?))
        .collect()
}

fn kref(v: &[Json]) -> Result<KRef> {
    let idx = |i: usize| {
        v.get(i)
            .and_then(Json::as_u64)
            .map(|x| x as usize)
            .ok_or_else(|| anyhow!("expected [layer, node, tensor], got {}", Json::from(v)))
    };
    Ok(KRef {
        layer: v
            .first()
            .and_then(Json::as_str)
            .ok_or_else(|| anyhow!("expected [layer, node, tensor], got {}", Json::from(v)))?
            .to_string(),
        node: idx(1)?,
        tensor: idx(2)?,
    })
}

/// Keras 2: `[layer, node, tensor]` or `[layer, node, tensor, kwargs]`, node and tensor ints.
fn is_v2_leaf(v: &Json) -> bool {
    let Some(a) = v.as_array() else { return false };
    (a.len() == 3 || (a.len() == 4 && a[3].is_object()))
        && a[0].is_string()
        && a[1].is_i64()
        && (a[2].is_i64() || a[0] == "_CONSTANT_VALUE")
}

fn parse_call_v2(node: &Json) -> Result<Call> {
    let mut kwargs = BTreeMap::new();
    let first = v2_arg(node, &mut kwargs)?;
    let first = match first {
        // A plain layer's single input is a one-element list: unwrap it.
        Arg::List(mut items) if items.len() == 1 && !is_v2_leaf(node) => items.remove(0),
        a => a,
    };
    Ok(Call {
        args: vec![first],
        kwargs,
    })
}

fn v2_arg(v: &Json, kwargs: &mut BTreeMap<String, Arg>) -> Result<Arg> {
    if is_v2_leaf(v) {
        let a = v.as_array().expect("leaf is an array");
        if let Some(kw) = a.get(3).and_then(Json::as_object) {
            for (k, val) in kw {
                kwargs.insert(k.clone(), v2_value(val));
            }
        }
        if a[0] == "_CONSTANT_VALUE" {
            return Ok(Arg::Value(a[2].clone()));
        }
        return Ok(Arg::Tensor(kref(a)?));
    }
    match v.as_array() {
        Some(items) => Ok(Arg::List(
            items
                .iter()
                .map(|i| v2_arg(i, kwargs))
                .collect::<Result<_>>()?,
        )),
        None => bail!("unexpected inbound node entry {v}"),
    }
}

/// A Keras 2 keyword value: `[layer, node, tensor]` lists are tensors.
fn v2_value(v: &Json) -> Arg {
    match v.as_array() {
        Some(a) if a.len() == 3 && a[0].is_string() && a[1].is_u64() && a[2].is_u64() => {
            kref(a).map(Arg::Tensor).unwrap_or(Arg::Value(v.clone()))
        }
        Some(a) if a.iter().any(|i| i.is_array()) => Arg::List(a.iter().map(v2_value).collect()),
        _ => Arg::Value(v.clone()),
    }
}

fn parse_call_v3(node: &Json) -> Result<Call> {
    let args = match node.get("args") {
        Some(Json::Array(a)) => a.iter().map(v3_value).collect::<Result<_>>()?,
        Some(v) => vec![v3_value(v)?],
        None => vec![],
    };
    let mut kwargs = BTreeMap::new();
    if let Some(kw) = node.get("kwargs").and_then(Json::as_object) {
        for (k, v) in kw {
            kwargs.insert(k.clone(), v3_value(v)?);
        }
    }
    Ok(Call { args, kwargs })
}

fn v3_value(v: &Json) -> Result<Arg> {
    if v.get("class_name").and_then(Json::as_str) == Some("__keras_tensor__") {
        let h = v
            .pointer("/config/keras_history")
            .and_then(Json::as_array)
            .context("a keras tensor without keras_history")?;
        return Ok(Arg::Tensor(kref(h)?));
    }
    Ok(match v.as_array() {
        Some(items) => Arg::List(items.iter().map(v3_value).collect::<Result<_>>()?),
        None => Arg::Value(v.clone()),
    })
}

/// A Sequential model as a chain of calls, starting from its InputLayer or from an input made
/// from the first layer's `batch_input_shape` / `batch_shape` / the model's
/// `build_input_shape`.
fn parse_sequential(config: &Json) -> Result<Model> {
    let (name, entries) = match config {
        Json::Array(a) => ("sequential".to_string(), a),
        _ => (
            name_of(config, "sequential"),
            config
                .get("layers")
                .and_then(Json::as_array)
                .context("a Sequential model without layers")?,
        ),
    };
    let mut layers = Vec::with_capacity(entries.len() + 1);
    for e in entries {
        layers.push(parse_layer_head(e)?);
    }
    if layers.first().is_none_or(|l| !l.is_input()) {
        let first = layers
            .first()
            .with_context(|| format!("Sequential model '{name}' has no layers"))?;
        let shape = ["batch_input_shape", "batch_shape"]
            .iter()
            .find_map(|k| first.config.get(*k).cloned())
            .or_else(|| config.get("build_input_shape").cloned())
            .with_context(|| {
                format!(
                    "Sequential model '{name}' has no input shape (it was never built): pass the \
                     model after calling it on data or give its first layer an input_shape"
                )
            })?;
        let dtype = first
            .config
            .get("dtype")
            .cloned()
            .unwrap_or(Json::from("float32"));
        let input_name = format!("{}_input", first.name);
        layers.insert(
            0,
            Layer {
                class: "InputLayer".into(),
                module: None,
                name: input_name.clone(),
                config: serde_json::json!({"batch_input_shape": shape, "dtype": dtype, "name": input_name}),
                calls: vec![],
                model: None,
            },
        );
    }
    for i in 1..layers.len() {
        let prev = KRef {
            layer: layers[i - 1].name.clone(),
            node: 0,
            tensor: 0,
        };
        layers[i].calls.push(Call {
            args: vec![Arg::Tensor(prev)],
            kwargs: BTreeMap::new(),
        });
    }
    let last = layers.last().expect("at least the input").name.clone();
    Ok(Model {
        inputs: vec![KRef {
            layer: layers[0].name.clone(),
            node: 0,
            tensor: 0,
        }],
        outputs: vec![KRef {
            layer: last,
            node: 0,
            tensor: 0,
        }],
        name,
        layers,
        keras2_nodes: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keras2_nodes_keep_structure_and_kwargs() {
        let c = parse_call_v2(&json!([["c", 0, 0, {"y": 3.0, "name": null}]])).unwrap();
        assert!(matches!(c.args[0], Arg::Tensor(ref t) if t.layer == "c"));
        assert!(matches!(c.kwargs["y"], Arg::Value(_)));
        let c = parse_call_v2(&json!(["c", 0, 0, {"y": ["d", 1, 0]}])).unwrap();
        assert!(matches!(c.args[0], Arg::Tensor(_)));
        assert!(matches!(c.kwargs["y"], Arg::Tensor(ref t) if t.layer == "d" && t.node == 1));
        let c = parse_call_v2(&json!([["a", 0, 0, {}], ["b", 0, 0, {}]])).unwrap();
        assert!(matches!(c.args[0], Arg::List(ref l) if l.len() == 2));
    }

    #[test]
    fn keras3_nodes_read_keras_history() {
        let t =
            json!({"class_name": "__keras_tensor__", "config": {"keras_history": ["bn", 0, 0]}});
        let c = parse_call_v3(&json!({"args": [t, 3.0], "kwargs": {"mask": null}})).unwrap();
        assert_eq!(c.args.len(), 2);
        assert!(matches!(c.args[0], Arg::Tensor(ref t) if t.layer == "bn"));
        assert!(matches!(c.args[1], Arg::Value(_)));
    }

    #[test]
    fn sequential_without_input_layer_gets_one() {
        let m = parse_model(&json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [null, 3]}}
        ]}}))
        .unwrap();
        assert_eq!(m.layers[0].name, "d_input");
        assert!(matches!(m.layers[1].calls[0].args[0], Arg::Tensor(ref t) if t.layer == "d_input"));
        assert_eq!(m.outputs[0].layer, "d");
    }
}
