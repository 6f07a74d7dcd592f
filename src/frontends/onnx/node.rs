//! What an op mapping sees of one ONNX node: its inputs as [`Val`]s, typed attribute access
//! (every attribute a mapping does not read is reported as unsupported, so none is silently
//! ignored), constant inputs, and emission of IR nodes named after the node's outputs.
use super::builder::{not_constant, to_ints, Builder, IntsArg, Spec, Val};
use super::tensor::{self, Lazy};
use crate::interp::Value;
use crate::proto::onnx::{attribute_proto::AttributeType, AttributeProto, NodeProto, TensorProto};
use anyhow::{bail, Context, Result};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

/// One ONNX node being converted.
pub struct Ctx<'a> {
    pub b: &'a mut Builder,
    pub node: &'a NodeProto,
    /// The default domain's opset version.
    pub opset: i64,
    inputs: Vec<Option<Val>>,
    read: RefCell<HashSet<String>>,
    dir: &'a tensor::ModelDir,
}

impl<'a> Ctx<'a> {
    pub fn new(
        b: &'a mut Builder,
        node: &'a NodeProto,
        opset: i64,
        inputs: Vec<Option<Val>>,
        dir: &'a tensor::ModelDir,
    ) -> Ctx<'a> {
        Ctx {
            b,
            node,
            opset,
            inputs,
            read: RefCell::new(HashSet::new()),
            dir,
        }
    }

    // ---- inputs ----

    /// Number of inputs given (trailing omitted optional inputs not counted).
    pub fn n_inputs(&self) -> usize {
        self.inputs
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1)
    }

    pub fn input(&self, i: usize) -> Result<Val> {
        self.opt_input(i)
            .with_context(|| format!("input {i} is missing"))
    }

    pub fn opt_input(&self, i: usize) -> Option<Val> {
        self.inputs.get(i).cloned().flatten()
    }

    /// All given inputs (variadic ops).
    pub fn all_inputs(&self) -> Result<Vec<Val>> {
        (0..self.n_inputs()).map(|i| self.input(i)).collect()
    }

    /// An optional input that must be known now.
    pub fn const_input(&self, i: usize, what: &str) -> Result<Option<Value>> {
        match self.opt_input(i) {
            None => Ok(None),
            Some(Val::Const(c)) => Ok(Some(c.value()?)),
            Some(v) => Err(not_constant(&v, what)),
        }
    }

    pub fn const_ints(&self, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
        self.const_input(i, what)?.map(|v| to_ints(&v)).transpose()
    }

    pub fn const_floats(&self, i: usize, what: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .const_input(i, what)?
            .map(|v| v.to_f32().iter().copied().collect()))
    }

    /// An optional shape-like input known now: its entries sizes, integers or symbolic dims.
    pub fn ints_input(&self, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
        match self.opt_input(i) {
            None => Ok(None),
            Some(v @ (Val::Const(_) | Val::Dims(_))) => Ok(Some(to_ints(&v.value_now()?)?)),
            Some(v) => Err(not_constant(&v, what)),
        }
    }

    /// A shape-like input: its entries when known now, else the tensor computing it at run
    /// time (an integer tensor).
    pub fn ints_arg(&self, i: usize, what: &str) -> Result<Option<IntsArg>> {
        match self.opt_input(i) {
            None => Ok(None),
            Some(v @ (Val::Const(_) | Val::Dims(_))) => {
                Ok(Some(IntsArg::Known(to_ints(&v.value_now()?)?)))
            }
            Some(v) if v.dtype().is_int() => Ok(Some(IntsArg::Runtime(v))),
            Some(v) => bail!("{what} ('{}') is {}, not integers", v.name(), v.ty()),
        }
    }

    /// A weight input: must be a constant.
    pub fn weight(&self, i: usize, what: &str) -> Result<Lazy> {
        match self.input(i)? {
            Val::Const(c) => Ok(c.data),
            v => Err(not_constant(&v, what)),
        }
    }

    // ---- attributes ----

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.read.borrow_mut().insert(name.to_string());
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// Marks attributes as understood though they change nothing at inference.
    pub fn ignore(&self, names: &[&str]) {
        for n in names {
            self.attr(n);
        }
    }

    /// Attributes present on the node that the mapping never read.
    pub fn unread_attrs(&self) -> Vec<String> {
        let read = self.read.borrow();
        self.node
            .attribute
            .iter()
            .filter(|a| !read.contains(&a.name))
            .map(|a| a.name.clone())
            .collect()
    }

    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        if !a.ref_attr_name.is_empty() {
            bail!("attribute '{name}' refers to a function attribute outside a function");
        }
        let ty = a.r#type();
        // IR version 1 files carry no type; trust the field then.
        if ty != AttributeType::Undefined && ty != want {
            bail!(
                "attribute '{name}' is {}, expected {}",
                ty.as_str_name(),
                want.as_str_name()
            );
        }
        Ok(Some(a))
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.opt_int(name)?.unwrap_or(default))
    }
    pub fn opt_float(&self, name: &str) -> Result<Option<f32>> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f))
    }
    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.opt_float(name)?.unwrap_or(default))
    }
    pub fn opt_string(&self, name: &str) -> Result<Option<String>> {
        self.typed(name, AttributeType::String)?
            .map(|a| {
                String::from_utf8(a.s.to_vec())
                    .with_context(|| format!("attribute '{name}' is not UTF-8"))
            })
            .transpose()
    }
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        Ok(self
            .opt_string(name)?
            .unwrap_or_else(|| default.to_string()))
    }
    pub fn opt_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }
    pub fn opt_floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }
    pub fn opt_strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        self.typed(name, AttributeType::Strings)?
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| {
                        String::from_utf8(s.to_vec())
                            .with_context(|| format!("attribute '{name}' is not UTF-8"))
                    })
                    .collect()
            })
            .transpose()
    }
    pub fn opt_tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        Ok(self
            .typed(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    /// Decodes a tensor attribute.
    pub fn decode(&self, t: &TensorProto) -> Result<Lazy> {
        tensor::decode(t, self.dir)
    }

    // ---- emission ----

    /// Name of output `k` of the ONNX node.
    pub fn out_name(&self, k: usize) -> String {
        self.node.output.get(k).cloned().unwrap_or_default()
    }

    /// A node that produces the ONNX node's output 0 (named after it).
    pub fn spec(&self, op: &'static str) -> Spec {
        self.spec_for(0, op)
    }

    /// A node that produces the ONNX node's output `k` (named after it).
    pub fn spec_for(&self, k: usize, op: &'static str) -> Spec {
        Spec {
            name: self.out_name(k),
            onnx_name: true,
            op,
            attrs: BTreeMap::new(),
            inputs: vec![],
            weights: vec![],
            runtime: vec![],
        }
    }

    /// An intermediate node, named `<output 0>/<suffix>`.
    pub fn tmp(&self, op: &'static str, suffix: &str) -> Spec {
        Spec {
            name: format!("{}/{suffix}", self.out_name(0)),
            onnx_name: false,
            ..self.spec(op)
        }
    }

    pub fn emit(&mut self, spec: Spec) -> Result<Vec<Val>> {
        self.b.emit(spec)
    }

    pub fn emit1(&mut self, spec: Spec) -> Result<Val> {
        self.b.emit1(spec)
    }

    /// A constant made while converting this node.
    pub fn constant(&mut self, suffix: &str, v: &Value, dtype: crate::ir::DType) -> Result<Val> {
        let name = format!("{}/{suffix}", self.out_name(0));
        self.b.constant_value(&name, v, dtype)
    }
}
