//! Weights computed from stored ones, described the same way by every frontend and pass. A
//! [`Derived`] weight is one or more source tensors ([`Source`]: a weight of an inner
//! [`WeightReader`], a named tensor of an input file such as an HDF5 dataset, a literal tensor,
//! or a tensor read on first use) and an ordered list of [`Step`]s (reshape, permute, row
//! reorder, gate reorder, stack, cast, dequantize). Steps before a `Stack` apply to each source
//! (each direction of a recurrent weight); `Stack` makes them one tensor.
//!
//! [`DerivedWeights`] reads such weights lazily: `info` computes dtype and shape from the
//! sources' infos without reading bytes; `read` applies the steps; `write_to` streams. The
//! streaming keeps each tensor's bytes on the cheapest path: a weight whose steps only reshape
//! is written by whoever holds its bytes (the inner reader's own `write_to`; a slice of a mapped
//! file is copied by the kernel, see [`super::sink`]); a trailing row reorder is written row by
//! row with positioned reads of the mapped source, never building the result
//! ([`super::mapped::write_rows`]); everything else is built once, in place where it can be
//! (a row reorder of an owned buffer), with the mapped pages it read released.
mod numeric;
mod steps;

pub use numeric::filled;
pub use steps::Step;

use super::mapped::write_rows;
use super::{write_tensor, Sink, Tensor, TensorInfo, WeightReader};
use crate::ir::DType;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A weight's key: (node name, parameter name).
pub type Key = (String, String);

/// Named tensors of an input file (the datasets of an HDF5 file, by path).
pub trait TensorFile {
    /// The file, for messages.
    fn path(&self) -> &Path;
    /// Dtype and shape of tensor `name` without reading its data.
    fn info(&self, name: &str) -> Result<TensorInfo>;
    /// Tensor `name`.
    fn read(&self, name: &str) -> Result<Tensor>;
}

/// A tensor whose dtype and shape are known and whose bytes are read when needed (ONNX
/// external data, mapped on first read).
pub trait LazyTensor {
    fn info(&self) -> TensorInfo;
    fn read(&self) -> Result<Tensor>;
}

/// Where a source tensor of a derived weight is.
#[derive(Clone)]
pub enum Source {
    /// Weight `param` of `node` in the inner reader.
    Weight { node: String, param: String },
    /// Tensor `name` of the reader's input file (an HDF5 dataset path).
    File(String),
    /// A tensor given with the description (a constant, or bytes of a mapped model file).
    Literal(Tensor),
    /// A tensor read on first use.
    Lazy(Arc<dyn LazyTensor>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Weight { node, param } => write!(f, "weight '{param}' of node '{node}'"),
            Source::File(name) => f.write_str(name),
            Source::Literal(t) => write!(f, "literal {}{:?}", t.info.dtype, t.info.shape),
            Source::Lazy(t) => {
                let info = t.info();
                write!(f, "stored {}{:?}", info.dtype, info.shape)
            }
        }
    }
}

/// A weight made from source tensors by a list of steps.
#[derive(Clone, Debug)]
pub struct Derived {
    pub sources: Vec<Source>,
    pub steps: Vec<Step>,
}

impl Derived {
    /// Weight `param` of `node` in the inner reader, as it is.
    pub fn weight(node: &str, param: &str) -> Derived {
        Derived::of(Source::Weight {
            node: node.to_string(),
            param: param.to_string(),
        })
    }

    /// Tensor `name` of the input file, as it is.
    pub fn file(name: &str) -> Derived {
        Derived::of(Source::File(name.to_string()))
    }

    pub fn literal(t: Tensor) -> Derived {
        Derived::of(Source::Literal(t))
    }

    pub fn lazy(t: Arc<dyn LazyTensor>) -> Derived {
        Derived::of(Source::Lazy(t))
    }

    /// A tensor of `dtype` and `shape` with every element `value` (see [`filled`]).
    pub fn filled(dtype: DType, shape: Vec<usize>, value: f64) -> Result<Derived> {
        Ok(Derived::literal(filled(dtype, shape, value)?))
    }

    /// Several sources, to be combined by a `Stack` step.
    pub fn stacked(sources: Vec<Source>) -> Derived {
        Derived {
            sources,
            steps: vec![],
        }
    }

    fn of(source: Source) -> Derived {
        Derived::stacked(vec![source])
    }

    /// This weight with `step` applied last.
    pub fn then(mut self, step: Step) -> Derived {
        self.steps.push(step);
        self
    }
}

/// Weights derived from an inner reader, an input file and literal tensors, keyed by
/// (node, param) and listed in insertion order.
#[derive(Default)]
pub struct DerivedWeights<'w> {
    inner: Option<Box<dyn WeightReader + 'w>>,
    file: Option<Box<dyn TensorFile + 'w>>,
    entries: HashMap<Key, Derived>,
    keys: Vec<Key>,
}

impl<'w> DerivedWeights<'w> {
    /// Weights derived from those of `inner`.
    pub fn over(inner: impl WeightReader + 'w) -> Self {
        DerivedWeights {
            inner: Some(Box::new(inner)),
            ..Default::default()
        }
    }

    /// These weights reading [`Source::File`] tensors from `file`.
    pub fn with_file(mut self, file: impl TensorFile + 'w) -> Self {
        self.file = Some(Box::new(file));
        self
    }

    /// Adds (or replaces) weight `param` of `node`.
    pub fn insert(&mut self, node: &str, param: &str, derived: Derived) {
        let key = (node.to_string(), param.to_string());
        if self.entries.insert(key.clone(), derived).is_none() {
            self.keys.push(key);
        }
    }

    /// How weight `param` of `node` is made.
    pub fn get(&self, node: &str, param: &str) -> Option<&Derived> {
        self.entries.get(&(node.to_string(), param.to_string()))
    }

    /// Dtype and shape of weight `param` of `node` without reading bytes, or why the weight
    /// cannot be made ([`WeightReader::info`] only says whether it can).
    pub fn try_info(&self, node: &str, param: &str) -> Result<TensorInfo> {
        let d = self.entry(node, param)?;
        self.derived_info(d)
            .with_context(|| self.describe(node, param, d))
    }

    fn entry(&self, node: &str, param: &str) -> Result<&Derived> {
        self.get(node, param)
            .with_context(|| format!("no weight '{param}' for node '{node}'"))
    }

    fn inner(&self) -> Result<&dyn WeightReader> {
        self.inner
            .as_deref()
            .context("internal: derived weights read a weight but have no inner reader")
    }

    fn file(&self) -> Result<&dyn TensorFile> {
        self.file
            .as_deref()
            .context("the model has weights but no weights file was given")
    }

    fn source_info(&self, s: &Source) -> Result<TensorInfo> {
        match s {
            Source::Weight { node, param } => self
                .inner()?
                .info(node, param)
                .with_context(|| format!("no weight '{param}' for node '{node}'")),
            Source::File(name) => self.file()?.info(name),
            Source::Literal(t) => Ok(t.info.clone()),
            Source::Lazy(t) => Ok(t.info()),
        }
    }

    fn source_read(&self, s: &Source) -> Result<Tensor> {
        match s {
            Source::Weight { node, param } => self.inner()?.read(node, param),
            Source::File(name) => self.file()?.read(name),
            Source::Literal(t) => Ok(t.clone()),
            Source::Lazy(t) => t.read(),
        }
    }

    fn derived_info(&self, d: &Derived) -> Result<TensorInfo> {
        let mut infos = d
            .sources
            .iter()
            .map(|s| self.source_info(s))
            .collect::<Result<Vec<_>>>()?;
        for step in &d.steps {
            infos = step.infos(infos)?;
        }
        one(infos)
    }

    /// The tensors after the first `n` steps.
    fn compute(&self, d: &Derived, n: usize) -> Result<Vec<Tensor>> {
        let mut tensors = d
            .sources
            .iter()
            .map(|s| self.source_read(s))
            .collect::<Result<Vec<_>>>()?;
        for step in &d.steps[..n] {
            tensors = step.apply(tensors)?;
        }
        Ok(tensors)
    }

    /// "weight 'w' of node 'n'", and the stored tensors it comes from when they are elsewhere.
    fn describe(&self, node: &str, param: &str, d: &Derived) -> String {
        let at = format!("weight '{param}' of node '{node}'");
        let elsewhere = |s: &&Source| match s {
            Source::Weight { node: n, param: p } => n != node || p != param,
            Source::File(_) => true,
            Source::Literal(_) | Source::Lazy(_) => false,
        };
        let from: Vec<String> = d
            .sources
            .iter()
            .filter(elsewhere)
            .map(|s| format!("{s:?}"))
            .collect();
        if from.is_empty() {
            return at;
        }
        let file = match &self.file {
            Some(f) if d.sources.iter().any(|s| matches!(s, Source::File(_))) => {
                format!("{} ", f.path().display())
            }
            _ => String::new(),
        };
        format!("{at} from {file}({})", from.join(", "))
    }
}

/// The single tensor the steps must end with.
fn one<T>(mut items: Vec<T>) -> Result<T> {
    match items.len() {
        1 => Ok(items.pop().expect("one item")),
        n => bail!("the steps end with {n} tensors, not one (a Stack step is missing)"),
    }
}

impl<'w> FromIterator<(Key, Derived)> for DerivedWeights<'w> {
    fn from_iter<I: IntoIterator<Item = (Key, Derived)>>(entries: I) -> Self {
        let mut w = DerivedWeights::default();
        for ((node, param), d) in entries {
            w.insert(&node, &param, d);
        }
        w
    }
}

impl WeightReader for DerivedWeights<'_> {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        self.try_info(node, param).ok()
    }

    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        let d = self.entry(node, param)?;
        let at = || self.describe(node, param, d);
        if let ([Source::Weight { node: n, param: p }], []) = (&d.sources[..], &d.steps[..]) {
            // As it is: the inner reader's own error says what is wrong.
            return self.inner()?.read(n, p);
        }
        one(self.compute(d, d.steps.len()).with_context(at)?).with_context(at)
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.keys.clone()
    }

    fn write_to(&self, node: &str, param: &str, w: &mut dyn Sink) -> Result<u64> {
        let d = self.entry(node, param)?;
        let at = || self.describe(node, param, d);
        // The last step that moves bytes; only reshapes follow it.
        let last = d.steps.iter().enumerate().rfind(|(_, s)| !s.keeps_bytes());
        match (last, &d.sources[..]) {
            (None, [Source::Weight { node: n, param: p }]) => {
                if !d.steps.is_empty() {
                    self.derived_info(d).with_context(at)?;
                }
                // Streamed by the reader that holds the bytes.
                self.inner()?.write_to(n, p, w).with_context(at)
            }
            (Some((i, Step::Rows(rows))), _) => {
                self.derived_info(d).with_context(at)?;
                let t = one(self.compute(d, i).with_context(at)?).with_context(at)?;
                let row = steps::row_bytes(&t.info);
                Ok(write_rows(w, &t.data, row, rows)?)
            }
            _ => write_tensor(&self.read(node, param)?, w),
        }
    }
}

#[cfg(test)]
mod tests;
