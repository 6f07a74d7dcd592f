//! One MMdnn node as the op mappings read it: its inputs, and its attributes typed, with
//! MMdnn's defaults for absent ones.
use crate::ir::serialize::{dtype_from_proto, shape_from_proto};
use crate::ir::{DType, Node, TensorRef};
use crate::proto;
use crate::proto::attr_value::Value;
use anyhow::{anyhow, bail, Context, Result};

/// An MMdnn node with typed attribute access.
pub(super) struct MmNode<'a> {
    pub(super) def: &'a proto::NodeDef,
    pub(super) inputs: Vec<TensorRef>,
}

impl<'a> MmNode<'a> {
    pub(super) fn new(def: &'a proto::NodeDef) -> Self {
        MmNode {
            def,
            inputs: def.input.iter().map(|s| TensorRef::parse(s)).collect(),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.def.name
    }

    /// A node of our `op` with this node's name and inputs.
    pub(super) fn node(&self, op: &str) -> Node {
        Node::new(self.name(), op).with_inputs(self.inputs.iter().cloned())
    }

    pub(super) fn input(&self, i: usize) -> Result<&TensorRef> {
        self.inputs
            .get(i)
            .ok_or_else(|| anyhow!("input {i} is missing ({} given)", self.inputs.len()))
    }

    /// The attribute's value; `None` when absent or never set (how MMdnn writes an empty list).
    pub(super) fn attr(&self, key: &str) -> Option<&'a Value> {
        self.def.attr.get(key).and_then(|a| a.value.as_ref())
    }

    pub(super) fn ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::List(l)) if l.f.is_empty() && l.s.is_empty() => Some(l.i.clone()),
            Some(Value::Shape(s)) => Some(shape_from_proto(s)),
            Some(v) => bail!("attribute '{key}' is {}, not a list of ints", kind(v)),
        })
    }

    pub(super) fn floats(&self, key: &str) -> Result<Option<Vec<f32>>> {
        Ok(match self.attr(key) {
            Some(Value::List(l)) if !l.f.is_empty() => Some(l.f.clone()),
            _ => self
                .ints(key)?
                .map(|v| v.into_iter().map(|i| i as f32).collect()),
        })
    }

    pub(super) fn int(&self, key: &str) -> Result<Option<i64>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::I(i)) => Some(*i),
            Some(v) => bail!("attribute '{key}' is {}, not an int", kind(v)),
        })
    }

    pub(super) fn float(&self, key: &str) -> Result<Option<f32>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::F(f)) => Some(*f),
            Some(Value::I(i)) => Some(*i as f32),
            Some(v) => bail!("attribute '{key}' is {}, not a float", kind(v)),
        })
    }

    /// A flag; absent reads as false, as MMdnn's emitters read it.
    pub(super) fn flag(&self, key: &str) -> Result<bool> {
        Ok(match self.attr(key) {
            None => false,
            Some(Value::B(b)) => *b,
            Some(Value::I(i)) => *i != 0,
            Some(v) => bail!("attribute '{key}' is {}, not a bool", kind(v)),
        })
    }

    pub(super) fn str(&self, key: &str) -> Result<Option<String>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::S(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            Some(v) => bail!("attribute '{key}' is {}, not a string", kind(v)),
        })
    }

    pub(super) fn dtype(&self, key: &str) -> Result<Option<DType>> {
        Ok(match self.attr(key) {
            None => None,
            Some(Value::Type(t)) => {
                Some(dtype_from_proto(*t).with_context(|| format!("attribute '{key}'"))?)
            }
            Some(v) => bail!("attribute '{key}' is {}, not a type", kind(v)),
        })
    }

    pub(super) fn req_ints(&self, key: &str) -> Result<Vec<i64>> {
        required(key, self.ints(key))
    }

    pub(super) fn req_int(&self, key: &str) -> Result<i64> {
        required(key, self.int(key))
    }

    pub(super) fn req_float(&self, key: &str) -> Result<f32> {
        required(key, self.float(key))
    }

    /// `auto_pad` is SAME_UPPER or SAME_LOWER (MMdnn computes both the TensorFlow way).
    pub(super) fn same_padding(&self) -> Result<bool> {
        Ok(self
            .str("auto_pad")?
            .is_some_and(|p| p.to_ascii_uppercase().starts_with("SAME")))
    }
}

/// An attribute that must be present.
pub(super) fn required<T>(key: &str, value: Result<Option<T>>) -> Result<T> {
    value?.ok_or_else(|| anyhow!("attribute '{key}' is missing"))
}

pub(super) fn kind(v: &Value) -> &'static str {
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
