//! Reading IR written by Microsoft MMdnn 0.3.1: maps its op names, attributes (NHWC layout,
//! 8-element pads, Keras-style kernels) and weight keys to mmdnn's conventions.
//!
//! Every mapped op keeps MMdnn's NHWC data flow (`data_format: channels_last`, channel axis -1),
//! so weights keep their bytes; only depthwise kernels change shape. An op that expands into
//! several nodes gives its MMdnn name to the last one, so consumers and weights still resolve.
//! Absent MMdnn attributes read as MMdnn's emitters read them (proto3 defaults: false, 0).
//! Padding is recomputed from the recorded input shape where MMdnn says SAME (its own pads
//! ignore dilation), and after mapping, the inferred shapes are checked against the
//! `_output_shapes` MMdnn recorded. Ops whose meaning MMdnn does not pin down are refused.
use super::graph::{Graph, Node, TensorRef};
use super::ops::shape_rules::same_pads;
use super::serialize::{dtype_from_proto, shape_from_proto};
use super::types::{shape_string, AttrValue, DType, Shape};
use super::validate;
use crate::proto;
use crate::proto::attr_value::Value;
use crate::weights::{Tensor, TensorInfo, WeightReader};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where one of our weights comes from.
#[derive(Clone, Debug)]
enum Source {
    /// MMdnn's weight of `layer` under the first of `keys` present, then transformed.
    Mmdnn {
        layer: String,
        keys: &'static [&'static str],
        transform: Transform,
    },
    /// A constant MMdnn kept in its node's `value` attribute.
    Literal(Tensor),
}

/// What is done to an MMdnn weight on its way to our node.
#[derive(Clone, Debug)]
enum Transform {
    /// Nothing: MMdnn's layout is ours.
    None,
    /// Same bytes, new shape; the MMdnn tensor must have shape `from`.
    Reshape { from: Vec<usize>, to: Vec<usize> },
    /// Converts the elements (MMdnn stored TensorFlow constants as float64/int64).
    Cast(DType),
}

/// How MMdnn's weights map onto the imported graph: for each (our node, our param) the MMdnn
/// (layer, key) it comes from, and an optional transform.
#[derive(Clone, Debug, Default)]
pub struct WeightMap {
    entries: BTreeMap<(String, String), Source>,
}

impl WeightMap {
    /// Wraps MMdnn's weights (as read from its pickled .npy, keyed (layer, key)) into a reader
    /// keyed by our (node, param), applying the transforms lazily on read.
    pub fn wrap(&self, mmdnn: Box<dyn WeightReader>) -> Box<dyn WeightReader> {
        Box::new(Mapped {
            map: self.clone(),
            inner: mmdnn,
        })
    }

    /// MMdnn weights that no node of the imported graph reads (e.g. a TensorFlow `Mul`'s
    /// `alpha`): a converter should refuse or warn rather than drop them silently.
    pub fn unmapped(&self, mmdnn: &dyn WeightReader) -> Vec<(String, String)> {
        let used: HashSet<(&str, &str)> = self
            .entries
            .values()
            .filter_map(|s| match s {
                Source::Mmdnn { layer, keys, .. } => Some((layer, keys)),
                Source::Literal(_) => None,
            })
            .flat_map(|(layer, keys)| keys.iter().map(move |k| (layer.as_str(), *k)))
            .collect();
        mmdnn
            .keys()
            .into_iter()
            .filter(|(l, k)| !used.contains(&(l.as_str(), k.as_str())))
            .collect()
    }

    fn insert(&mut self, node: &str, param: &str, source: Source) {
        self.entries
            .insert((node.to_string(), param.to_string()), source);
    }
}

/// MMdnn's weights seen through a [`WeightMap`].
struct Mapped {
    map: WeightMap,
    inner: Box<dyn WeightReader>,
}

/// Where a mapped weight is found.
enum Located<'a> {
    Literal(&'a Tensor),
    Mmdnn {
        layer: &'a str,
        key: &'static str,
        transform: &'a Transform,
    },
}

impl Mapped {
    /// The source of (node, param); for MMdnn weights, the first key present in the file.
    fn locate(&self, node: &str, param: &str) -> Option<Located<'_>> {
        match self
            .map
            .entries
            .get(&(node.to_string(), param.to_string()))?
        {
            Source::Literal(t) => Some(Located::Literal(t)),
            Source::Mmdnn {
                layer,
                keys,
                transform,
            } => keys
                .iter()
                .find(|k| self.inner.info(layer, k).is_some())
                .map(|key| Located::Mmdnn {
                    layer,
                    key,
                    transform,
                }),
        }
    }
}

impl WeightReader for Mapped {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        let (layer, key, transform) = match self.locate(node, param)? {
            Located::Literal(t) => return Some(t.info.clone()),
            Located::Mmdnn {
                layer,
                key,
                transform,
            } => (layer, key, transform),
        };
        let info = self.inner.info(layer, key)?;
        Some(match transform {
            Transform::Reshape { from, to } if info.shape == *from => TensorInfo {
                dtype: info.dtype,
                shape: to.clone(),
            },
            // A stored shape that does not fit is left as it is, so shape checks report the
            // real shape; `read` fails.
            Transform::None | Transform::Reshape { .. } => info,
            Transform::Cast(dtype) => TensorInfo {
                dtype: *dtype,
                shape: info.shape,
            },
        })
    }

    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        let (layer, key, transform) = match self.locate(node, param) {
            None => bail!("no weight '{param}' for node '{node}' in the MMdnn weights"),
            Some(Located::Literal(t)) => return Ok(t.clone()),
            Some(Located::Mmdnn {
                layer,
                key,
                transform,
            }) => (layer, key, transform),
        };
        let t = self.inner.read(layer, key)?;
        let at = || format!("weight '{param}' of node '{node}' (MMdnn '{layer}'/'{key}')");
        match transform {
            Transform::None => Ok(t),
            Transform::Reshape { from, to } => {
                if t.info.shape != *from {
                    bail!(
                        "{}: MMdnn stored shape {:?}, expected {from:?}",
                        at(),
                        t.info.shape
                    );
                }
                Tensor::new(t.info.dtype, to.clone(), t.data).with_context(at)
            }
            Transform::Cast(dtype) => cast(&t, *dtype).with_context(at),
        }
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.map
            .entries
            .keys()
            .filter(|(n, p)| self.locate(n, p).is_some())
            .cloned()
            .collect()
    }
}

/// Converts a constant's elements to `to` (floats to f32, integers between 32 and 64 bits).
fn cast(t: &Tensor, to: DType) -> Result<Tensor> {
    let from = t.info.dtype;
    let data: Vec<u8> = match (from, to) {
        _ if from == to => return Ok(t.clone()),
        (_, DType::F32) if from.is_float() => {
            t.to_f32().iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        (DType::I64, DType::I32) => t
            .data
            .chunks_exact(8)
            .map(|c| {
                let v = i64::from_le_bytes(c.try_into().expect("chunk of 8"));
                i32::try_from(v).map(i32::to_le_bytes)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow!("a value does not fit in int32"))?
            .concat(),
        (DType::I32, DType::I64) => t
            .data
            .chunks_exact(4)
            .flat_map(|c| {
                i64::from(i32::from_le_bytes(c.try_into().expect("chunk of 4"))).to_le_bytes()
            })
            .collect(),
        _ => bail!("cannot convert {from} to {to}"),
    };
    Tensor::new(to, t.info.shape.clone(), data)
}

/// Converts an MMdnn GraphDef into an mmdnn graph, with the map of its weights.
pub fn import(gd: &proto::GraphDef) -> Result<(Graph, WeightMap)> {
    let unsupported: Vec<String> = gd
        .node
        .iter()
        .filter(|n| mapper(&n.op).is_none())
        .map(|n| format!("'{}' ({})", n.name, n.op))
        .collect();
    match unsupported.len() {
        0 => {}
        1 => bail!(
            "MMdnn IR has 1 node with an op mmdnn cannot map: {}",
            unsupported[0]
        ),
        k => bail!(
            "MMdnn IR has {k} nodes with ops mmdnn cannot map: {}",
            unsupported.join(", ")
        ),
    }
    let mut cx = Importer::new(gd)?;
    let mut problems = vec![];
    for def in &gd.node {
        let n = MmNode::new(def);
        let map = mapper(&def.op).expect("unsupported ops were rejected above");
        if let Err(e) = map(&mut cx, &n) {
            problems.push(format!("node '{}' ({}): {e:#}", def.name, def.op));
        }
    }
    if !problems.is_empty() {
        bail!(
            "cannot map the MMdnn IR ({} problem{}):\n  - {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("\n  - ")
        );
    }
    let graph = cx.finish()?;
    check_recorded_shapes(&graph, &cx.recorded)?;
    Ok((graph, cx.weights))
}

/// Maps one MMdnn node into the graph.
type MapFn = fn(&mut Importer, &MmNode) -> Result<()>;

/// The mapping of each MMdnn op; `None` for ops mmdnn refuses.
fn mapper(op: &str) -> Option<MapFn> {
    Some(match op {
        "DataInput" => data_input,
        "Constant" => constant,
        "Conv" => conv,
        "DepthwiseConv" => depthwise_conv,
        "SeparableConv" => separable_conv,
        "ConvTranspose" => conv_transpose,
        "Pool" => pool,
        "FullyConnected" => fully_connected,
        "BatchNorm" => batch_norm,
        "LRN" => lrn,
        "Embedding" => embedding,
        "Relu" | "Relu6" => relu,
        "LeakyRelu" => leaky_relu,
        "Elu" | "ELU" => elu,
        "PRelu" => prelu,
        "Softmax" => softmax,
        "Dropout" => dropout,
        "Add" | "Sub" | "Mul" | "Div" | "Maximum" | "Maxmum" | "Minimum" => binary,
        "Flatten" => flatten,
        "Reshape" => reshape,
        "Concat" => concat,
        "Squeeze" => squeeze,
        "Unsqueeze" => unsqueeze,
        "Transpose" => transpose,
        "Pad" => pad,
        "Crop" => crop,
        "Slice" => slice,
        "ReduceMean" => reduce_mean,
        "UpSampling2D" => upsampling,
        "Cast" => cast_op,
        _ if UNARY.contains(&op) => unary,
        _ => return None,
    })
}

/// MMdnn ops that are our attribute-less unary op of the same name.
const UNARY: &[&str] = &[
    "Sigmoid",
    "Tanh",
    "Abs",
    "Exp",
    "Log",
    "Reciprocal",
    "Square",
    "Sqrt",
    "Rsqrt",
    "Floor",
    "Softplus",
    "Softsign",
    "HardSigmoid",
];

/// An MMdnn node with typed attribute access.
struct MmNode<'a> {
    def: &'a proto::NodeDef,
    inputs: Vec<TensorRef>,
}

impl<'a> MmNode<'a> {
    fn new(def: &'a proto::NodeDef) -> Self {
        MmNode {
            def,
            inputs: def.input.iter().map(|s| TensorRef::parse(s)).collect(),
        }
    }

    fn name(&self) -> &str {
        &self.def.name
    }

    /// A node of our `op` with this node's name and inputs.
    fn node(&self, op: &str) -> Node {
        Node::new(self.name(), op).with_inputs(self.inputs.iter().cloned())
    }

    fn input(&self, i: usize) -> Result<&TensorRef> {
        self.inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing ({} given)", self.inputs.len()))
    }

    /// The attribute's value; `None` when absent or never set (how MMdnn writes an empty list).
    fn attr(&self, key: &str) -> Option<&'a Value> {
        self.def.attr.get(key).and_then(|a| a.value.as_ref())
    }

    fn ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::List(l)) if l.f.is_empty() && l.s.is_empty() => Some(l.i.clone()),
            Some(Value::Shape(s)) => Some(shape_from_proto(s)),
            Some(v) => bail!("attribute '{key}' is {}, not a list of ints", kind(v)),
        })
    }

    fn floats(&self, key: &str) -> Result<Option<Vec<f32>>> {
        Ok(match self.attr(key) {
            Some(Value::List(l)) if !l.f.is_empty() => Some(l.f.clone()),
            _ => self
                .ints(key)?
                .map(|v| v.into_iter().map(|i| i as f32).collect()),
        })
    }

    fn int(&self, key: &str) -> Result<Option<i64>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::I(i)) => Some(*i),
            Some(v) => bail!("attribute '{key}' is {}, not an int", kind(v)),
        })
    }

    fn float(&self, key: &str) -> Result<Option<f32>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::F(f)) => Some(*f),
            Some(Value::I(i)) => Some(*i as f32),
            Some(v) => bail!("attribute '{key}' is {}, not a float", kind(v)),
        })
    }

    /// A flag; absent reads as false, as MMdnn's emitters read it.
    fn flag(&self, key: &str) -> Result<bool> {
        Ok(match self.attr(key) {
            None => false,
            Some(Value::B(b)) => *b,
            Some(Value::I(i)) => *i != 0,
            Some(v) => bail!("attribute '{key}' is {}, not a bool", kind(v)),
        })
    }

    fn str(&self, key: &str) -> Result<Option<String>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::S(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            Some(v) => bail!("attribute '{key}' is {}, not a string", kind(v)),
        })
    }

    fn dtype(&self, key: &str) -> Result<Option<DType>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::Type(t)) => {
                Some(dtype_from_proto(*t).with_context(|| format!("attribute '{key}'"))?)
            }
            Some(v) => bail!("attribute '{key}' is {}, not a type", kind(v)),
        })
    }

    fn req_ints(&self, key: &str) -> Result<Vec<i64>> {
        required(key, self.ints(key))
    }

    fn req_int(&self, key: &str) -> Result<i64> {
        required(key, self.int(key))
    }

    fn req_float(&self, key: &str) -> Result<f32> {
        required(key, self.float(key))
    }

    /// `auto_pad` is SAME_UPPER or SAME_LOWER (MMdnn computes both the TensorFlow way).
    fn same_padding(&self) -> Result<bool> {
        Ok(self
            .str("auto_pad")?
            .is_some_and(|p| p.to_ascii_uppercase().starts_with("SAME")))
    }
}

/// An attribute that must be present.
fn required<T>(key: &str, value: Result<Option<T>>) -> Result<T> {
    value?.ok_or_else(|| anyhow!("attribute '{key}' is missing"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::S(_) => "a string",
        Value::I(_) => "an int",
        Value::F(_) => "a float",
        Value::B(_) => "a bool",
        Value::Type(_) => "a type",
        Value::Shape(_) => "a shape",
        Value::Tensor(_) => "a tensor",
    }
}

/// MMdnn's recorded `_output_shapes` of a node (`None` for unknown rank).
fn recorded_shapes(def: &proto::NodeDef) -> Vec<Option<Shape>> {
    match def
        .attr
        .get("_output_shapes")
        .and_then(|a| a.value.as_ref())
    {
        Some(Value::List(l)) => l
            .shape
            .iter()
            .map(|s| (!s.unknown_rank).then(|| shape_from_proto(s)))
            .collect(),
        _ => vec![],
    }
}

/// What MMdnn said about one of its nodes.
struct Recorded {
    op: String,
    shapes: Vec<Option<Shape>>,
}

/// The graph being built.
struct Importer {
    graph: Graph,
    weights: WeightMap,
    recorded: HashMap<String, Recorded>,
    /// Node names in use, MMdnn's and generated ones.
    taken: HashSet<String>,
}

impl Importer {
    fn new(gd: &proto::GraphDef) -> Result<Self> {
        let mut recorded = HashMap::new();
        for n in &gd.node {
            let r = Recorded {
                op: n.op.clone(),
                shapes: recorded_shapes(n),
            };
            if recorded.insert(n.name.clone(), r).is_some() {
                bail!("MMdnn IR has two nodes named '{}'", n.name);
            }
        }
        Ok(Importer {
            graph: Graph::default(),
            weights: WeightMap::default(),
            taken: recorded.keys().cloned().collect(),
            recorded,
        })
    }

    fn add(&mut self, node: Node) -> TensorRef {
        let r = node.output(0);
        self.graph.nodes.push(node);
        r
    }

    /// A name based on `base` used by no MMdnn or generated node.
    fn fresh(&mut self, base: &str) -> String {
        let name = std::iter::once(base.to_string())
            .chain((1..).map(|i| format!("{base}_{i}")))
            .find(|n| !self.taken.contains(n))
            .expect("an unused name exists");
        self.taken.insert(name.clone());
        name
    }

    /// Maps our (node, param) to MMdnn's (layer, key) with a transform.
    fn weight(
        &mut self,
        node: &str,
        param: &str,
        layer: &str,
        keys: &'static [&'static str],
        transform: Transform,
    ) {
        let layer = layer.to_string();
        let source = Source::Mmdnn {
            layer,
            keys,
            transform,
        };
        self.weights.insert(node, param, source);
    }

    /// Maps our (node, param) to the MMdnn weight of the same node under `keys`, unchanged.
    fn same_weight(&mut self, n: &MmNode, param: &str, keys: &'static [&'static str]) {
        self.weight(n.name(), param, n.name(), keys, Transform::None);
    }

    fn output_shape(&self, n: &MmNode) -> Option<&Shape> {
        self.shape_of(&TensorRef::new(n.name(), 0))
    }

    /// The shape MMdnn recorded for a tensor.
    fn shape_of(&self, r: &TensorRef) -> Option<&Shape> {
        self.recorded.get(&r.node)?.shapes.get(r.index)?.as_ref()
    }

    /// The recorded sizes of the `n` spatial axes of an NHWC tensor, if all are known.
    fn spatial_dims(&self, r: &TensorRef, n: usize) -> Option<Vec<i64>> {
        let s = self.shape_of(r)?;
        (s.len() == n + 2 && s[1..=n].iter().all(|&d| d >= 0)).then(|| s[1..=n].to_vec())
    }

    fn finish(&mut self) -> Result<Graph> {
        let mut graph = std::mem::take(&mut self.graph);
        graph.inputs = graph
            .nodes
            .iter()
            .filter(|n| n.op == "DataInput")
            .map(|n| n.name.clone())
            .collect();
        let consumed: HashSet<&str> = graph
            .nodes
            .iter()
            .flat_map(|n| n.inputs.iter().map(|r| r.node.as_str()))
            .collect();
        graph.outputs = graph
            .nodes
            .iter()
            .filter(|n| !consumed.contains(n.name.as_str()))
            .map(|n| n.output(0))
            .collect();
        graph.producer = "MMdnn 0.3.1 IR (imported)".to_string();
        graph.sort()?;
        Ok(graph)
    }
}

/// Checks the shapes inferred for the mapped graph against MMdnn's `_output_shapes`.
fn check_recorded_shapes(graph: &Graph, recorded: &HashMap<String, Recorded>) -> Result<()> {
    let mut typed = graph.clone();
    // Problems of the graph itself are the caller's validation's to report; this only compares
    // the shapes that could be inferred.
    let _ = validate::check(&mut typed, None);
    let mismatches: Vec<String> = typed
        .nodes
        .iter()
        .filter_map(|n| {
            let r = recorded.get(&n.name)?;
            let want = r.shapes.first()?.as_ref()?;
            let got = &n.outputs.first()?.shape;
            let agree = want.len() == got.len()
                && want
                    .iter()
                    .zip(got)
                    .all(|(&a, &b)| a < 0 || b < 0 || a == b);
            (!agree).then(|| {
                format!(
                    "node '{}' (MMdnn {}): MMdnn recorded {} but the mapped {} gives {}",
                    n.name,
                    r.op,
                    shape_string(want),
                    n.op,
                    shape_string(got)
                )
            })
        })
        .collect();
    if mismatches.is_empty() {
        return Ok(());
    }
    bail!(
        "the imported MMdnn graph disagrees with the output shapes MMdnn recorded:\n  - {}",
        mismatches.join("\n  - ")
    )
}

// ---- spatial geometry ----

/// Spatial entries of an MMdnn per-axis list: `[1, s..., 1]` (or already `[s...]`); absent = 1s.
fn spatial(list: Option<Vec<i64>>, n: usize, what: &str) -> Result<Vec<i64>> {
    match list {
        None => Ok(vec![1; n]),
        Some(v) if v.is_empty() => Ok(vec![1; n]),
        Some(v) if v.len() == n + 2 => Ok(v[1..=n].to_vec()),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => bail!("{what} {v:?} does not fit {n} spatial axes"),
    }
}

/// Spatial pads `[begins..., ends...]` from MMdnn's pads over all axes (`2·(n+2)` values,
/// or already `2·n`); absent = none.
fn spatial_pads(pads: Option<Vec<i64>>, n: usize) -> Result<Vec<i64>> {
    match pads {
        None => Ok(vec![0; 2 * n]),
        Some(p) if p.is_empty() => Ok(vec![0; 2 * n]),
        Some(p) if p.len() == 2 * (n + 2) => Ok([&p[1..=n], &p[n + 3..2 * n + 3]].concat()),
        Some(p) if p.len() == 2 * n => Ok(p),
        Some(p) => bail!("pads {p:?} do not fit {n} spatial axes"),
    }
}

/// Kernel, strides, dilations and spatial pads of a windowed MMdnn op.
struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    pads: Vec<i64>,
}

impl Window {
    /// Reads the window of `n` with the given spatial kernel. Where MMdnn says SAME and the
    /// input's size is recorded, pads are recomputed the TensorFlow way (MMdnn's ignore
    /// dilation); otherwise MMdnn's pads are taken as they are.
    fn read(cx: &Importer, n: &MmNode, kernel: Vec<i64>) -> Result<Window> {
        let mut w = Window::as_written(n, kernel)?;
        if n.same_padding()? {
            if let Some(input) = cx.spatial_dims(n.input(0)?, w.kernel.len()) {
                w.pads = same_pads(&input, &w.kernel, &w.strides, &w.dilations, true)
                    .context("SAME padding needs the input size")?;
            }
        }
        Ok(w)
    }

    /// The window with MMdnn's pads as they are.
    fn as_written(n: &MmNode, kernel: Vec<i64>) -> Result<Window> {
        let k = kernel.len();
        let w = Window {
            strides: spatial(n.ints("strides")?, k, "strides")?,
            dilations: spatial(n.ints("dilations")?, k, "dilations")?,
            pads: spatial_pads(n.ints("pads")?, k)?,
            kernel,
        };
        if [&w.kernel, &w.strides, &w.dilations]
            .iter()
            .any(|v| v.iter().any(|&d| d < 1))
        {
            bail!(
                "kernel {:?}, strides {:?} and dilations {:?} must be positive",
                w.kernel,
                w.strides,
                w.dilations
            );
        }
        Ok(w)
    }

    fn attrs(&self, node: Node) -> Node {
        node.with_attr("kernel_shape", AttrValue::Ints(self.kernel.clone()))
            .with_attr("strides", AttrValue::Ints(self.strides.clone()))
            .with_attr("dilations", AttrValue::Ints(self.dilations.clone()))
            .with_attr("pads", AttrValue::Ints(self.pads.clone()))
    }
}

/// A Conv node in channels_last layout.
fn conv_node(name: &str, input: TensorRef, w: &Window, group: i64, out: i64, bias: bool) -> Node {
    w.attrs(Node::new(name, "Conv").with_inputs([input]))
        .with_attr("group", AttrValue::Int(group))
        .with_attr("out_channels", AttrValue::Int(out))
        .with_attr("use_bias", AttrValue::Bool(bias))
        .with_attr("data_format", AttrValue::Str("channels_last".into()))
}

/// Splits MMdnn's conv `kernel_shape` `[*kernel, a, b]` into the spatial kernel, a and b.
fn split_kernel(n: &MmNode) -> Result<(Vec<i64>, i64, i64)> {
    let ks = n.req_ints("kernel_shape")?;
    if !(3..=5).contains(&ks.len()) {
        bail!("kernel_shape {ks:?} is not [*kernel, in, out] for 1 to 3 spatial axes");
    }
    let k = ks.len() - 2;
    Ok((ks[..k].to_vec(), ks[k], ks[k + 1]))
}

fn dims(v: &[i64]) -> Vec<usize> {
    v.iter().map(|&d| d.max(0) as usize).collect()
}

// ---- one function per MMdnn op ----

fn data_input(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let shape = match n.attr("shape") {
        Some(Value::Shape(s)) if !s.unknown_rank => shape_from_proto(s),
        _ => cx
            .output_shape(n)
            .cloned()
            .context("neither `shape` nor `_output_shapes` gives the input's shape")?,
    };
    // MMdnn's emitters default to float32 when `dtype` is absent.
    let dtype = n.dtype("dtype")?.unwrap_or(DType::F32);
    cx.add(
        n.node("DataInput")
            .with_attr("dtype", AttrValue::Type(dtype))
            .with_attr("shape", AttrValue::Shape(shape)),
    );
    Ok(())
}

fn constant(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let dtype = n.dtype("dtype")?.unwrap_or(DType::F32);
    let recorded = cx
        .output_shape(n)
        .filter(|s| s.iter().all(|&d| d >= 0))
        .cloned();
    let shape = match n.attr("value") {
        Some(v) => {
            let (values, listed) = match v {
                Value::F(f) => (vec![f64::from(*f)], false),
                Value::I(i) => (vec![*i as f64], false),
                Value::List(l) if !l.f.is_empty() => {
                    (l.f.iter().map(|&f| f64::from(f)).collect(), true)
                }
                Value::List(l) => (l.i.iter().map(|&i| i as f64).collect(), true),
                v => bail!("attribute 'value' is {}, not numbers", kind(v)),
            };
            let shape = match recorded {
                Some(s) if s.iter().product::<i64>() == values.len() as i64 => s,
                _ if listed => vec![values.len() as i64],
                _ => vec![],
            };
            let t = literal(&values, dtype, dims(&shape))?;
            cx.weights.insert(n.name(), "value", Source::Literal(t));
            shape
        }
        None => {
            let shape = recorded.context(
                "the value is in the weights file and `_output_shapes` does not give its shape",
            )?;
            cx.weight(
                n.name(),
                "value",
                n.name(),
                &["value"],
                Transform::Cast(dtype),
            );
            shape
        }
    };
    cx.add(
        n.node("Constant")
            .with_attr("dtype", AttrValue::Type(dtype))
            .with_attr("shape", AttrValue::Shape(shape)),
    );
    Ok(())
}

/// A tensor of `dtype` holding `values`.
fn literal(values: &[f64], dtype: DType, shape: Vec<usize>) -> Result<Tensor> {
    let data: Vec<u8> = match dtype {
        DType::F32 => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        DType::F64 => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
        DType::I32 => values
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect(),
        DType::I64 => values
            .iter()
            .flat_map(|&v| (v as i64).to_le_bytes())
            .collect(),
        d => bail!("constants of type {d} in attributes are not supported"),
    };
    Tensor::new(dtype, shape, data)
}

/// Conv: kernel `[*k, in, out]`, weights `[*k, in/group, out]` = our channels_last layout.
fn conv(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, _, out) = split_kernel(n)?;
    let w = Window::read(cx, n, kernel)?;
    let (x, group, bias) = (
        n.input(0)?.clone(),
        n.int("group")?.unwrap_or(1),
        n.flag("use_bias")?,
    );
    cx.add(conv_node(n.name(), x, &w, group, out, bias));
    cx.same_weight(n, "weights", &["weights"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// DepthwiseConv: kernel `[*k, in, mult]` becomes a Conv with `group` = in; its weights keep
/// their bytes as `[*k, 1, in·mult]`.
fn depthwise_conv(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, c, mult) = split_kernel(n)?;
    let w = Window::read(cx, n, kernel.clone())?;
    let (x, bias) = (n.input(0)?.clone(), n.flag("use_bias")?);
    cx.add(conv_node(n.name(), x, &w, c, c * mult, bias));
    let from = dims(&[kernel.as_slice(), &[c, mult]].concat());
    let to = dims(&[kernel.as_slice(), &[1, c * mult]].concat());
    cx.weight(
        n.name(),
        "weights",
        n.name(),
        &["weights"],
        Transform::Reshape { from, to },
    );
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// SeparableConv: `<name>_depthwise` (Conv, group = in) then `<name>` (1×1 Conv with the
/// bias). MMdnn records no depth multiplier (its emitters assume 1); a `depthwise_filter`
/// with another multiplier fails when read.
fn separable_conv(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, c, out) = split_kernel(n)?;
    let w = Window::read(cx, n, kernel.clone())?;
    let dw_name = cx.fresh(&format!("{}_depthwise", n.name()));
    let dw = cx.add(conv_node(&dw_name, n.input(0)?.clone(), &w, c, c, false));
    let from = dims(&[kernel.as_slice(), &[c, 1]].concat());
    let to = dims(&[kernel.as_slice(), &[1, c]].concat());
    cx.weight(
        &dw_name,
        "weights",
        n.name(),
        &["depthwise_filter"],
        Transform::Reshape { from, to },
    );
    let pointwise = Window {
        kernel: vec![1; kernel.len()],
        strides: vec![1; kernel.len()],
        dilations: vec![1; kernel.len()],
        pads: vec![0; 2 * kernel.len()],
    };
    let bias = n.flag("use_bias")?;
    cx.add(conv_node(n.name(), dw, &pointwise, 1, out, bias));
    cx.same_weight(n, "weights", &["pointwise_filter"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// ConvTranspose: weights `[*k, out, in]` = our channels_last layout. MMdnn's parsers disagree
/// on the order in `kernel_shape` and on what `pads` mean, so the output channels come from the
/// recorded output shape and the cropping from the recorded input and output sizes.
fn conv_transpose(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, _, _) = split_kernel(n)?;
    let k = kernel.len();
    let out_shape = cx
        .output_shape(n)
        .filter(|s| s.len() == k + 2 && s[k + 1] >= 0)
        .context("`_output_shapes` does not give the output channels")?;
    let out = out_shape[k + 1];
    let mut w = Window::as_written(n, kernel)?;
    let mut extra = vec![0; k];
    let input = cx.spatial_dims(n.input(0)?, k);
    let output = cx.spatial_dims(&TensorRef::new(n.name(), 0), k);
    let same = n.same_padding()?;
    if let (Some(input), Some(output)) = (input, output) {
        for i in 0..k {
            let full = (input[i] - 1) * w.strides[i] + w.dilations[i] * (w.kernel[i] - 1) + 1;
            let crop = full - output[i];
            let begin = if same { crop.max(0) / 2 } else { w.pads[i] };
            let end = crop - begin;
            w.pads[i] = begin;
            w.pads[k + i] = end.max(0);
            extra[i] = (-end).max(0);
        }
    }
    let group = n.int("group")?.unwrap_or(1);
    cx.add(
        w.attrs(n.node("ConvTranspose"))
            .with_attr("output_padding", AttrValue::Ints(extra))
            .with_attr("group", AttrValue::Int(group))
            .with_attr("out_channels", AttrValue::Int(out))
            .with_attr("use_bias", AttrValue::Bool(n.flag("use_bias")?))
            .with_attr("data_format", AttrValue::Str("channels_last".into())),
    );
    cx.same_weight(n, "weights", &["weights"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// Pool, or GlobalPool when `global_pooling` is set (keepdims unless MMdnn recorded a 2-d
/// output, as Keras' global pools give). AVG excludes padding (TensorFlow/Keras semantics).
fn pool(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let kind = required("pooling_type", n.str("pooling_type"))?.to_ascii_uppercase();
    if kind != "MAX" && kind != "AVG" {
        bail!("pooling_type '{kind}' is neither MAX nor AVG");
    }
    let node = if n.flag("global_pooling")? {
        let keepdims = cx.output_shape(n).is_none_or(|s| s.len() != 2);
        n.node("GlobalPool")
            .with_attr("keepdims", AttrValue::Bool(keepdims))
    } else {
        let ks = n.req_ints("kernel_shape")?;
        if !(3..=5).contains(&ks.len()) {
            bail!("kernel_shape {ks:?} is not [1, *window, 1] for 1 to 3 spatial axes");
        }
        let w = Window::read(cx, n, ks[1..ks.len() - 1].to_vec())?;
        w.attrs(n.node("Pool"))
            .with_attr("count_include_pad", AttrValue::Bool(false))
    };
    cx.add(
        node.with_attr("pooling_type", AttrValue::Str(kind))
            .with_attr("data_format", AttrValue::Str("channels_last".into())),
    );
    Ok(())
}

fn fully_connected(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("FullyConnected")
            .with_attr("units", AttrValue::Int(n.req_int("units")?))
            .with_attr("use_bias", AttrValue::Bool(n.flag("use_bias")?)),
    );
    cx.same_weight(n, "weights", &["weights"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// BatchNorm over MMdnn's `axis` (an NHWC axis; default the last).
fn batch_norm(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("BatchNorm")
            .with_attr("axis", AttrValue::Int(n.int("axis")?.unwrap_or(-1)))
            .with_attr("epsilon", AttrValue::Float(n.req_float("epsilon")?))
            .with_attr("use_scale", AttrValue::Bool(n.flag("scale")?))
            .with_attr("use_bias", AttrValue::Bool(n.flag("bias")?)),
    );
    cx.same_weight(n, "mean", &["mean"]);
    cx.same_weight(n, "var", &["var"]);
    cx.same_weight(n, "scale", &["scale"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// LRN across channels; MMdnn's alpha is already divided by size in the formula (Caffe's).
fn lrn(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("LRN")
            .with_attr("size", AttrValue::Int(n.req_int("size")?))
            .with_attr("alpha", AttrValue::Float(n.req_float("alpha")?))
            .with_attr("beta", AttrValue::Float(n.req_float("beta")?))
            .with_attr("bias", AttrValue::Float(n.req_float("bias")?))
            .with_attr("axis", AttrValue::Int(-1)),
    );
    Ok(())
}

/// Embedding; the Keras parser stores the table as `embedding_weights`, others as `weights`.
fn embedding(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("Embedding")
            .with_attr("input_dim", AttrValue::Int(n.req_int("input_dim")?))
            .with_attr("output_dim", AttrValue::Int(n.req_int("output_dim")?)),
    );
    cx.same_weight(n, "weights", &["embedding_weights", "weights"]);
    Ok(())
}

/// Relu; Relu6, and Keras' ReLU with `max_value`, are Clip.
fn relu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let max = match n.def.op.as_str() {
        "Relu6" => Some(6.0),
        _ => n.float("max_value")?,
    };
    let node = match max {
        Some(max) => n
            .node("Clip")
            .with_attr("min", AttrValue::Float(0.0))
            .with_attr("max", AttrValue::Float(max)),
        None => n.node("Relu"),
    };
    cx.add(node);
    Ok(())
}

fn leaky_relu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let alpha = n.req_float("alpha")?;
    cx.add(
        n.node("LeakyRelu")
            .with_attr("alpha", AttrValue::Float(alpha)),
    );
    Ok(())
}

/// Elu (Caffe's parser writes `ELU`); alpha defaults to 1 as in Keras and Caffe.
fn elu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let alpha = n.float("alpha")?.unwrap_or(1.0);
    cx.add(n.node("Elu").with_attr("alpha", AttrValue::Float(alpha)));
    Ok(())
}

/// PRelu: MMdnn's `gamma` weight is our `slope` (NHWC, so it broadcasts as stored).
fn prelu(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node("PRelu"));
    cx.same_weight(n, "slope", &["gamma"]);
    Ok(())
}

/// Softmax over `axis` or `dim` (parsers use both), default the last axis.
fn softmax(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let axis = match n.int("axis")? {
        Some(a) => a,
        None => n.int("dim")?.unwrap_or(-1),
    };
    cx.add(n.node("Softmax").with_attr("axis", AttrValue::Int(axis)));
    Ok(())
}

fn unary(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node(&n.def.op));
    Ok(())
}

/// Dropout is the identity at inference.
fn dropout(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node("Identity"));
    Ok(())
}

/// Elementwise binary ops. More than two inputs are folded left into a chain whose last node
/// keeps the name; one input is used twice (MMdnn's parsers drop a repeated input, and its
/// emitters repeat it back).
fn binary(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let op = match n.def.op.as_str() {
        "Maxmum" => "Maximum",
        op => op,
    };
    let mut inputs = n.inputs.clone();
    match inputs.len() {
        0 => bail!("has no inputs"),
        1 => inputs.push(inputs[0].clone()),
        _ => {}
    }
    let last = inputs.pop().expect("two or more inputs");
    let mut acc = inputs[0].clone();
    for x in &inputs[1..] {
        let name = cx.fresh(n.name());
        acc = cx.add(Node::new(name, op).with_inputs([acc, x.clone()]));
    }
    cx.add(Node::new(n.name(), op).with_inputs([acc, last]));
    Ok(())
}

/// Flatten from axis 1; NHWC stays NHWC, so the flattened order is MMdnn's.
fn flatten(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(n.node("Flatten").with_attr("axis", AttrValue::Int(1)));
    Ok(())
}

/// Reshape to MMdnn's `shape` (NHWC, -1 batch first). When another entry is -1 too, the batch
/// is copied (0) so that entry can be inferred.
fn reshape(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mut shape = n.req_ints("shape")?;
    if shape.first() == Some(&-1) && shape[1..].contains(&-1) {
        shape[0] = 0;
    }
    cx.add(n.node("Reshape").with_attr("shape", AttrValue::Ints(shape)));
    Ok(())
}

/// Concat. MMdnn's Keras parser writes axis -1 as 3 whatever the rank; on a tensor of lower
/// rank that can only mean the last axis.
fn concat(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mut axis = n.req_int("axis")?;
    if axis == 3 && cx.output_shape(n).is_some_and(|s| s.len() < 4) {
        axis = -1;
    }
    cx.add(n.node("Concat").with_attr("axis", AttrValue::Int(axis)));
    Ok(())
}

fn squeeze(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let axes = match n.ints("axes")? {
        Some(a) => a,
        None => n.ints("squeeze_dims")?.unwrap_or_default(),
    };
    cx.add(n.node("Squeeze").with_attr("axes", AttrValue::Ints(axes)));
    Ok(())
}

fn unsqueeze(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let axes = n.req_ints("axes")?;
    cx.add(n.node("Unsqueeze").with_attr("axes", AttrValue::Ints(axes)));
    Ok(())
}

fn transpose(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let perm = n.ints("perm")?.context(
        "attribute 'perm' is missing (a permutation given as a tensor input is not supported)",
    )?;
    cx.add(n.node("Transpose").with_attr("perm", AttrValue::Ints(perm)));
    Ok(())
}

/// Pad: MMdnn's pads are already `[begins..., ends...]` over all axes.
fn pad(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mode = match n.str("mode")?.map(|m| m.to_ascii_lowercase()).as_deref() {
        None | Some("constant") => "constant",
        Some("reflect") => "reflect",
        Some("symmetric") => "symmetric",
        Some(m) => bail!("padding mode '{m}' is not CONSTANT, REFLECT or SYMMETRIC"),
    };
    cx.add(
        n.node("Pad")
            .with_attr("pads", AttrValue::Ints(n.req_ints("pads")?))
            .with_attr("mode", AttrValue::Str(mode.into()))
            .with_attr(
                "value",
                AttrValue::Float(n.float("constant_values")?.unwrap_or(0.0)),
            ),
    );
    Ok(())
}

/// Crop → Slice of the spatial axes. The Keras parser writes `border` as (begin, end) per
/// spatial axis; the Caffe parser writes offsets and leaves the size to `_output_shapes`.
/// The recorded shapes decide between the two where they are known.
fn crop(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let border = n.req_ints("border")?;
    if border.is_empty() || border.len() % 2 != 0 {
        bail!("border {border:?} does not have a begin and end per spatial axis");
    }
    let k = border.len() / 2;
    let input = cx.spatial_dims(n.input(0)?, k);
    let output = cx.spatial_dims(&TensorRef::new(n.name(), 0), k);
    let pairs_fit =
        |i: &[i64], o: &[i64]| (0..k).all(|a| i[a] - border[2 * a] - border[2 * a + 1] == o[a]);
    let (starts, ends): (Vec<i64>, Vec<i64>) = match (input, output) {
        (Some(i), Some(o)) if !pairs_fit(&i, &o) => {
            if (0..k).any(|a| border[a] + o[a] > i[a]) {
                bail!(
                    "border {border:?} fits neither (begin, end) pairs nor offsets for input {} and output {}",
                    shape_string(&i),
                    shape_string(&o)
                );
            }
            (0..k).map(|a| (border[a], border[a] + o[a])).unzip()
        }
        _ => (0..k)
            .map(|a| {
                let end = border[2 * a + 1];
                (border[2 * a], if end == 0 { i64::MAX } else { -end })
            })
            .unzip(),
    };
    cx.add(
        n.node("Slice")
            .with_attr("starts", AttrValue::Ints(starts))
            .with_attr("ends", AttrValue::Ints(ends))
            .with_attr("axes", AttrValue::Ints((1..=k as i64).collect())),
    );
    Ok(())
}

/// Slice: starts/ends/strides over the leading axes. TensorFlow's begin and end masks are
/// applied; shrink_axis_mask adds a Squeeze (which keeps the name); new-axis and ellipsis
/// masks are refused.
fn slice(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let mut starts = n.req_ints("starts")?;
    let mut ends = n.req_ints("ends")?;
    let mut steps = n.ints("strides")?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || steps.len() != starts.len() {
        bail!("starts {starts:?}, ends {ends:?} and strides {steps:?} differ in length");
    }
    for mask in ["new_axis_mask", "ellipsis_mask"] {
        if n.int(mask)?.unwrap_or(0) != 0 {
            bail!("{mask} is not supported");
        }
    }
    let bit = |mask: i64, i: usize| mask >> i & 1 == 1;
    let (begin_mask, end_mask) = (
        n.int("begin_mask")?.unwrap_or(0),
        n.int("end_mask")?.unwrap_or(0),
    );
    let shrink_mask = n.int("shrink_axis_mask")?.unwrap_or(0);
    let mut shrunk = vec![];
    for i in 0..starts.len() {
        let forward = steps[i] > 0;
        if bit(begin_mask, i) {
            starts[i] = if forward { 0 } else { i64::MAX };
        }
        if bit(end_mask, i) {
            ends[i] = if forward { i64::MAX } else { i64::MIN };
        }
        if bit(shrink_mask, i) {
            ends[i] = if starts[i] == -1 {
                i64::MAX
            } else {
                starts[i] + 1
            };
            steps[i] = 1;
            shrunk.push(i as i64);
        }
    }
    let name = if shrunk.is_empty() {
        n.name().to_string()
    } else {
        cx.fresh(&format!("{}_slice", n.name()))
    };
    let sliced = cx.add(
        Node::new(name, "Slice")
            .with_inputs([n.input(0)?.clone()])
            .with_attr("starts", AttrValue::Ints(starts))
            .with_attr("ends", AttrValue::Ints(ends))
            .with_attr("steps", AttrValue::Ints(steps)),
    );
    if !shrunk.is_empty() {
        cx.add(
            Node::new(n.name(), "Squeeze")
                .with_inputs([sliced])
                .with_attr("axes", AttrValue::Ints(shrunk)),
        );
    }
    Ok(())
}

/// ReduceMean; absent axes = all, absent keepdims = false (as MMdnn's emitters read it).
fn reduce_mean(cx: &mut Importer, n: &MmNode) -> Result<()> {
    cx.add(
        n.node("ReduceMean")
            .with_attr("axes", AttrValue::Ints(n.ints("axes")?.unwrap_or_default()))
            .with_attr("keepdims", AttrValue::Bool(n.flag("keepdims")?)),
    );
    Ok(())
}

/// UpSampling2D (Keras): nearest-neighbour repetition by integer `scales`.
fn upsampling(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let scales = required("scales", n.floats("scales"))?;
    cx.add(
        n.node("Resize")
            .with_attr("mode", AttrValue::Str("nearest".into()))
            .with_attr("scales", AttrValue::Floats(scales))
            .with_attr(
                "coordinate_transformation_mode",
                AttrValue::Str("asymmetric".into()),
            )
            .with_attr("nearest_mode", AttrValue::Str("floor".into()))
            .with_attr("data_format", AttrValue::Str("channels_last".into())),
    );
    Ok(())
}

/// Cast to MXNet's `dtype` or TensorFlow/PyTorch's `dstType` name.
fn cast_op(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let to = match (n.dtype("dtype")?, n.str("dstType")?.as_deref()) {
        (Some(t), _) => t,
        (None, Some("float")) => DType::F32,
        (None, Some("double")) => DType::F64,
        (None, Some("int")) => DType::I32,
        (None, Some(t)) => bail!("dstType '{t}' is not float, double or int"),
        (None, None) => bail!("neither `dtype` nor `dstType` gives the target type"),
    };
    cx.add(n.node("Cast").with_attr("to", AttrValue::Type(to)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_pads_follow_tensorflow() {
        // 8 wide, kernel 3, dilation 2: effective 5, total 4.
        assert_eq!(same_pads(&[8], &[3], &[1], &[2], true), Some(vec![2, 2]));
        // Stride 2 on 8: out 4, total 1, extra at the end.
        assert_eq!(same_pads(&[8], &[3], &[2], &[1], true), Some(vec![0, 1]));
    }

    #[test]
    fn pads_over_all_axes_become_spatial() {
        let p = spatial_pads(Some(vec![0, 1, 2, 0, 0, 3, 4, 0]), 2).unwrap();
        assert_eq!(p, vec![1, 2, 3, 4]);
        assert!(spatial_pads(Some(vec![1, 2, 3]), 2).is_err());
        assert_eq!(
            spatial(Some(vec![1, 2, 3, 1]), 2, "strides").unwrap(),
            vec![2, 3]
        );
    }

    #[test]
    fn casts_constants() {
        let t = Tensor::new(
            DType::F64,
            vec![2],
            [1.5f64.to_le_bytes(), (-2f64).to_le_bytes()].concat(),
        )
        .unwrap();
        assert_eq!(cast(&t, DType::F32).unwrap().to_f32(), vec![1.5, -2.0]);
        let big = Tensor::new(DType::I64, vec![1], (1i64 << 40).to_le_bytes().to_vec()).unwrap();
        assert!(cast(&big, DType::I32).is_err());
    }
}
