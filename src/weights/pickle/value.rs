//! The values the machine manipulates: stack values, dict keys, dicts and the arena of mutable
//! objects, plus the checks on value shapes that NumPy and PyTorch stand-ins share.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use super::globals::Global;
use super::numpy::{Array, Dtype};
use super::torch::{Storage, TorchTensorRef};
use super::{latin1, malformed, quoted, Res};

/// NumPy's own limit on the number of dimensions (also applied to PyTorch tensors).
pub(super) const MAX_NDIM: usize = 64;

/// Index of a mutable object (dict, list, dtype, array, storage, tensor) in the arena.
/// Mutable objects live in an arena so that memoised references share
/// state (BUILD after BINPUT) without reference cycles or `RefCell`.
pub(super) type ObjId = usize;

/// Byte data: borrowed from the input where possible, shared otherwise, so
/// that memo lookups never copy payloads.
#[derive(Debug, Clone)]
pub(super) enum Buf<'a> {
    Borrowed(&'a [u8]),
    Shared(Rc<[u8]>),
}

impl Buf<'_> {
    pub(super) fn as_slice(&self) -> &[u8] {
        match self {
            Buf::Borrowed(b) => b,
            Buf::Shared(b) => b,
        }
    }
}

impl PartialEq for Buf<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Buf<'_> {}

impl Hash for Buf<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

/// A value on the pickle stack or in the memo. Cloning is cheap: payloads
/// are borrowed or reference counted and mutable objects are arena indices.
#[derive(Debug, Clone)]
pub(super) enum Value<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// A Python float; its value is never needed by the accepted structures.
    Float,
    Str(&'a str),
    Bytes(Buf<'a>),
    Tuple(Tuple<'a>),
    Global(Global),
    Obj(ObjId),
}

/// A Python tuple's items, shared. A file can nest tuples as deep as it has bytes, so dropping
/// one never recurses: the items of a tuple dropped last are taken out and dropped in a loop.
#[derive(Debug, Clone)]
pub(super) struct Tuple<'a>(Rc<[Value<'a>]>);

impl<'a> Tuple<'a> {
    pub(super) fn new(items: Vec<Value<'a>>) -> Self {
        Tuple(Rc::from(items))
    }
}

impl<'a> std::ops::Deref for Tuple<'a> {
    type Target = [Value<'a>];
    fn deref(&self) -> &[Value<'a>] {
        &self.0
    }
}

impl Drop for Tuple<'_> {
    fn drop(&mut self) {
        let mut pending = vec![std::mem::replace(&mut self.0, Rc::from(Vec::new()))];
        while let Some(mut items) = pending.pop() {
            // Only the last holder of a tuple drops its items.
            let Some(items) = Rc::get_mut(&mut items) else {
                continue;
            };
            for item in items.iter_mut() {
                if let Value::Tuple(inner) = item {
                    pending.push(std::mem::replace(&mut inner.0, Rc::from(Vec::new())));
                }
            }
        }
    }
}

/// A dict key: Python `str` or `bytes` (Python 2 `str`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key<'a> {
    Str(&'a str),
    Bytes(Buf<'a>),
}

impl Key<'_> {
    /// The key as text, which must not be in `seen` yet (a dict may hold the same name once as
    /// `str` and once as `bytes`); the error names it as `what`, under `parent/` when given.
    pub(super) fn unique_text(
        &self,
        seen: &mut HashSet<String>,
        what: &str,
        parent: Option<&str>,
    ) -> Res<String> {
        let text = self.to_text();
        if !seen.insert(text.clone()) {
            let shown = match parent {
                Some(p) => format!("{p}/{text}"),
                None => text,
            };
            return Err(malformed(format!(
                "{what} {} appears twice (once as str, once as bytes)",
                quoted(&shown)
            )));
        }
        Ok(text)
    }

    /// The key as text: `str` as is, `bytes` as UTF-8 or else Latin-1.
    pub(super) fn to_text(&self) -> String {
        match self {
            Key::Str(s) => (*s).to_owned(),
            Key::Bytes(b) => match std::str::from_utf8(b.as_slice()) {
                Ok(s) => s.to_owned(),
                Err(_) => latin1(b.as_slice()),
            },
        }
    }
}

/// An insertion-ordered dict with Python's replace-on-duplicate semantics.
#[derive(Debug, Default)]
pub(super) struct Dict<'a> {
    pub(super) entries: Vec<(Key<'a>, Value<'a>)>,
    index: HashMap<Key<'a>, usize>,
}

impl<'a> Dict<'a> {
    pub(super) fn insert(&mut self, key: Key<'a>, value: Value<'a>) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
}

/// Mutable objects, addressed by [`ObjId`].
#[derive(Debug)]
pub(super) enum Object<'a> {
    Dict(Dict<'a>),
    List(Vec<Value<'a>>),
    Dtype(Dtype),
    Array(Array<'a>),
    /// A PyTorch storage named by a persistent id.
    Storage(Storage),
    /// A PyTorch tensor: where its elements are, not the elements.
    Tensor(TorchTensorRef),
}

/// Short description of a value's type for error messages.
pub(super) fn describe(value: &Value<'_>, objects: &[Object<'_>]) -> String {
    match value {
        Value::None => "None".into(),
        Value::Bool(_) => "a bool".into(),
        Value::Int(_) => "an int".into(),
        Value::Float => "a float".into(),
        Value::Str(_) => "a str".into(),
        Value::Bytes(_) => "a bytes object".into(),
        Value::Tuple(_) => "a tuple".into(),
        Value::Global(g) => format!("the class/function {}", g.name()),
        Value::Obj(id) => match objects.get(*id) {
            Some(Object::Dict(_)) => "a dict".into(),
            Some(Object::List(_)) => "a list".into(),
            Some(Object::Dtype(_)) => "a numpy.dtype".into(),
            Some(Object::Array(Array::Object { .. })) => "an object array".into(),
            Some(Object::Array(_)) => "a numpy.ndarray".into(),
            Some(Object::Storage(_)) => "a torch storage".into(),
            Some(Object::Tensor(_)) => "a torch.Tensor".into(),
            None => "an unknown object".into(),
        },
    }
}

/// A Python bool, or the ints 0/1 old NumPy versions used instead.
pub(super) fn as_flag(value: &Value<'_>) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Int(0) => Some(false),
        Value::Int(1) => Some(true),
        _ => None,
    }
}

/// A tuple of non-negative ints (a shape, strides or an axis order).
pub(super) fn shape_of(value: &Value<'_>) -> Res<Vec<usize>> {
    let Value::Tuple(items) = value else {
        return Err(malformed("array shape is not a tuple"));
    };
    if items.len() > MAX_NDIM {
        return Err(malformed(format!(
            "array has {} dimensions (NumPy allows {MAX_NDIM})",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Int(n) => {
                usize::try_from(*n).map_err(|_| malformed(format!("negative array dimension {n}")))
            }
            _ => Err(malformed("array shape contains a non-integer")),
        })
        .collect()
}
