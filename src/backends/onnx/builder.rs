//! The ONNX graph being built: node protos, initializers (weight-store references or small
//! synthesized tensors, never read while building), value names, and the per-node context the
//! op lowerings in `ops/` use to emit ONNX nodes.
use crate::ir::ops::Attrs;
use crate::ir::{DType, Graph, Node, TensorRef, TensorType};
use crate::proto::onnx::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use crate::weights::WeightReader;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{HashMap, HashSet};

/// Where an initializer's bytes come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A tensor of the (layout-converted) weight store, read only when the file is written.
    Weight { node: String, param: String },
    /// A small tensor made by a lowering (shapes, axes, scalars, ones and zeros).
    Data(Vec<u8>),
}

/// One initializer of the model.
#[derive(Clone, Debug)]
pub struct Init {
    pub name: String,
    pub dtype: DType,
    pub dims: Vec<i64>,
    pub payload: Payload,
}

impl Init {
    /// Size of the tensor's data in bytes as ONNX stores it (sub-byte types packed).
    pub fn nbytes(&self) -> u64 {
        let n = self.dims.iter().product::<i64>().max(0) as usize;
        crate::ir::narrow::packed_len(self.dtype, n) as u64
    }
}

/// The ONNX graph under construction.
pub struct Builder<'a> {
    pub opset: i64,
    pub graph: &'a Graph,
    pub weights: &'a dyn WeightReader,
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<Init>,
    /// Every value, initializer and node name handed out.
    used: HashSet<String>,
    /// ONNX value name of each IR tensor.
    values: HashMap<TensorRef, String>,
    /// Initializer name of each weight already referenced.
    weight_names: HashMap<(String, String), String>,
    /// ONNX node names handed out (a namespace of their own).
    node_names: HashSet<String>,
}

impl<'a> Builder<'a> {
    pub fn new(graph: &'a Graph, weights: &'a dyn WeightReader, opset: i64) -> Self {
        let mut b = Builder {
            opset,
            graph,
            weights,
            nodes: vec![],
            inits: vec![],
            used: HashSet::new(),
            values: HashMap::new(),
            weight_names: HashMap::new(),
            node_names: HashSet::new(),
        };
        // The interface keeps the source's names: the graph inputs', then each output's for its
        // tensor (unless that tensor is an input or an earlier output: `lower` names those).
        // Every other IR tensor keeps its own name (`node`, `node:i`) where it is free, so the
        // model reads like the source.
        let mut named: HashMap<TensorRef, String> = HashMap::new();
        for name in &graph.inputs {
            b.used.insert(name.clone());
            named.insert(TensorRef::new(name.clone(), 0), name.clone());
        }
        for (i, r) in graph.outputs.iter().enumerate() {
            let name = graph.output_name(i);
            if !named.contains_key(r) && !b.used.contains(&name) {
                b.used.insert(name.clone());
                named.insert(r.clone(), name);
            }
        }
        for node in &graph.nodes {
            for i in 0..node.outputs.len().max(1) {
                let r = node.output(i);
                let name = match named.remove(&r) {
                    Some(name) => name,
                    None => b.fresh(&r.to_string()),
                };
                b.values.insert(r, name);
            }
        }
        b
    }

    /// A name based on `base` that nothing uses yet (and that is now taken).
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while name.is_empty() || self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// The name of the next ONNX node made for IR node `ir`: its own name for the first one,
    /// `ir/Op` (made unique) for the others.
    fn node_name(&mut self, ir: &str, op: &str) -> String {
        let mut name = ir.to_string();
        let mut k = 0;
        while name.is_empty() || self.node_names.contains(&name) {
            k += 1;
            name = match k {
                1 => format!("{ir}/{op}"),
                _ => format!("{ir}/{op}_{k}"),
            };
        }
        self.node_names.insert(name.clone());
        name
    }

    /// The ONNX value name of an IR tensor.
    pub fn value(&self, r: &TensorRef) -> Result<String> {
        self.values
            .get(r)
            .cloned()
            .ok_or_else(|| anyhow!("internal: tensor '{r}' has no ONNX name"))
    }

    /// The initializer holding weight `param` of `node` (added once, read when writing).
    pub fn weight(&mut self, node: &str, param: &str) -> Result<String> {
        let key = (node.to_string(), param.to_string());
        if let Some(n) = self.weight_names.get(&key) {
            return Ok(n.clone());
        }
        let info = self
            .weights
            .info(node, param)
            .with_context(|| format!("weight '{param}' of node '{node}' is missing"))?;
        let name = self.fresh(&format!("{node}/{param}"));
        self.inits.push(Init {
            name: name.clone(),
            dtype: info.dtype,
            dims: info.shape.iter().map(|&d| d as i64).collect(),
            payload: Payload::Weight {
                node: node.to_string(),
                param: param.to_string(),
            },
        });
        self.weight_names.insert(key, name.clone());
        Ok(name)
    }

    /// A synthesized initializer named after `base`.
    pub fn data(&mut self, base: &str, dtype: DType, dims: Vec<i64>, bytes: Vec<u8>) -> String {
        let name = self.fresh(base);
        self.inits.push(Init {
            name: name.clone(),
            dtype,
            dims,
            payload: Payload::Data(bytes),
        });
        name
    }
}

/// Little-endian bytes of `values` converted to `dtype` (a float dtype, or an integer one for
/// integral values), one byte per element for the narrow types (the writer packs them).
pub fn typed_bytes(values: &[f64], dtype: DType) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * dtype.size());
    for &v in values {
        match dtype {
            DType::F32 => out.extend((v as f32).to_le_bytes()),
            DType::F64 => out.extend(v.to_le_bytes()),
            DType::F16 => out.extend(half::f16::from_f64(v).to_le_bytes()),
            DType::BF16 => out.extend(half::bf16::from_f64(v).to_le_bytes()),
            DType::I8 => out.extend((v as i8).to_le_bytes()),
            DType::U8 => out.extend((v as u8).to_le_bytes()),
            DType::I16 => out.extend((v as i16).to_le_bytes()),
            DType::U16 => out.extend((v as u16).to_le_bytes()),
            DType::I32 => out.extend((v as i32).to_le_bytes()),
            DType::U32 => out.extend((v as u32).to_le_bytes()),
            DType::I64 => out.extend((v as i64).to_le_bytes()),
            DType::U64 => out.extend((v as u64).to_le_bytes()),
            d @ (DType::F8E4M3FN
            | DType::F8E4M3FNUZ
            | DType::F8E5M2
            | DType::F8E5M2FNUZ
            | DType::F8E8M0
            | DType::F4E2M1) => out.push(crate::ir::narrow::encode(
                d,
                v as f32,
                true,
                crate::ir::narrow::RoundMode::Up,
            )),
            DType::I4 | DType::I2 => out.extend((v as i8).to_le_bytes()),
            DType::U4 | DType::U2 => out.extend((v as u8).to_le_bytes()),
            DType::Bool => bail!("no numeric constant of type bool"),
        }
    }
    Ok(out)
}

/// An ONNX attribute.
#[derive(Clone)]
pub enum A {
    I(&'static str, i64),
    F(&'static str, f32),
    S(&'static str, String),
    Is(&'static str, Vec<i64>),
    Fs(&'static str, Vec<f32>),
    Ss(&'static str, Vec<String>),
}

impl A {
    fn proto(self) -> AttributeProto {
        let mut a = AttributeProto::default();
        let (name, ty) = match self {
            A::I(n, v) => {
                a.i = v;
                (n, AttributeType::Int)
            }
            A::F(n, v) => {
                a.f = v;
                (n, AttributeType::Float)
            }
            A::S(n, v) => {
                a.s = v.into_bytes().into();
                (n, AttributeType::String)
            }
            A::Is(n, v) => {
                a.ints = v;
                (n, AttributeType::Ints)
            }
            A::Fs(n, v) => {
                a.floats = v;
                (n, AttributeType::Floats)
            }
            A::Ss(n, v) => {
                a.strings = v.into_iter().map(|s| s.into_bytes().into()).collect();
                (n, AttributeType::Strings)
            }
        };
        a.name = name.to_string();
        a.r#type = ty as i32;
        a
    }
}

/// Lowering context of one IR node.
pub struct Ctx<'b, 'a> {
    pub b: &'b mut Builder<'a>,
    pub node: &'b Node,
    pub a: Attrs<'b>,
}

impl<'b, 'a> Ctx<'b, 'a> {
    pub fn new(b: &'b mut Builder<'a>, node: &'b Node) -> Result<Self> {
        Ok(Ctx {
            b,
            node,
            a: Attrs::of(node)?,
        })
    }

    pub fn opset(&self) -> i64 {
        self.b.opset
    }

    /// Value name of input `i`.
    pub fn x(&self, i: usize) -> Result<String> {
        let r = self
            .node
            .inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing"))?;
        self.b.value(r)
    }

    /// Type of input `i`.
    pub fn in_ty(&self, i: usize) -> Result<&'a TensorType> {
        let r = self
            .node
            .inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing"))?;
        self.b
            .graph
            .tensor_type(r)
            .ok_or_else(|| anyhow!("input '{r}' has no type"))
    }

    /// Type of output `i`.
    pub fn out_ty(&self, i: usize) -> Result<&'b TensorType> {
        self.node
            .outputs
            .get(i)
            .ok_or_else(|| anyhow!("output {i} has no type"))
    }

    /// Value name of output `i`.
    pub fn y(&self, i: usize) -> Result<String> {
        self.b.value(&self.node.output(i))
    }

    /// A fresh intermediate value name.
    pub fn tmp(&mut self, suffix: &str) -> String {
        self.b.fresh(&format!("{}/{suffix}", self.node.name))
    }

    /// The initializer of one of this node's weights.
    pub fn weight(&mut self, param: &str) -> Result<String> {
        let node = self.node.name.clone();
        self.b.weight(&node, param)
    }

    /// Whether this node has weight `param`.
    pub fn has_weight(&self, param: &str) -> bool {
        self.b.weights.info(&self.node.name, param).is_some()
    }

    /// A 1-d int64 tensor: an initializer, or computed at run time when `values` holds
    /// symbolic dims (see `super::dims`; for the ops in `backends::WRITES_SYMBOLIC_ATTRS`).
    pub fn shape_ints(&mut self, suffix: &str, values: &[i64]) -> Result<String> {
        if values.iter().any(|&v| crate::ir::dim::is_symbolic(v)) {
            return self.dims_tensor(suffix, values);
        }
        Ok(self.ints(suffix, values))
    }

    /// A 1-d int64 initializer.
    pub fn ints(&mut self, suffix: &str, values: &[i64]) -> String {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let base = format!("{}/{suffix}", self.node.name);
        self.b
            .data(&base, DType::I64, vec![values.len() as i64], bytes)
    }

    /// An initializer of `dtype` with the given dims and values.
    pub fn consts(
        &mut self,
        suffix: &str,
        dtype: DType,
        dims: Vec<i64>,
        values: &[f64],
    ) -> Result<String> {
        let bytes = typed_bytes(values, dtype)?;
        let base = format!("{}/{suffix}", self.node.name);
        Ok(self.b.data(&base, dtype, dims, bytes))
    }

    /// A scalar (rank-0) initializer of `dtype`.
    pub fn scalar(&mut self, suffix: &str, dtype: DType, value: f64) -> Result<String> {
        self.consts(suffix, dtype, vec![], &[value])
    }

    /// Emits an ONNX node with explicit outputs.
    pub fn emit(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<A>) {
        let name = self.b.node_name(&self.node.name, op);
        self.b.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op.to_string(),
            attribute: attrs.into_iter().map(A::proto).collect(),
            ..Default::default()
        });
    }

    /// Emits a one-output node into a fresh intermediate value and returns its name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<A>) -> String {
        let out = self.tmp(&op.to_lowercase());
        self.emit(op, inputs, &[&out], attrs);
        out
    }

    /// Emits a one-output node computing output 0 of the IR node.
    pub fn last(&mut self, op: &str, inputs: &[&str], attrs: Vec<A>) -> Result<()> {
        let y = self.y(0)?;
        self.emit(op, inputs, &[&y], attrs);
        Ok(())
    }
}
