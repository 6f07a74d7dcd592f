//! PyTorch's `torch.save` pickle (the `data.pkl` entry of its zip archive), read as a
//! description of each tensor — element type, shape, strides, storage offset and the archive
//! entry holding its storage — without reading any tensor bytes.
//!
//! `torch.save(model.state_dict(), f)` pickles (protocol 2) a `collections.OrderedDict` from
//! parameter names to tensors. Each tensor is `torch._utils._rebuild_tensor_v2(storage,
//! storage_offset, size, stride, requires_grad, backward_hooks[, metadata])` (or the older
//! `_rebuild_tensor(storage, storage_offset, size, stride)`), and each storage is a persistent
//! id `('storage', storage_type, key, location, numel)`: `numel` elements of the type
//! `storage_type` names (`torch.FloatStorage`, ...), stored little-endian in the archive entry
//! `<archive>/data/<key>`. The dict's attributes (`_metadata`, set by BUILD) are ignored.
//! Storages pickled any other way (`torch.storage._load_from_bytes`, which would run
//! `torch.load` on nested bytes) and every global off the allow-list are refused.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use super::globals::{Family, Global, Policy};
use super::value::{as_flag, describe, shape_of, Object, Value};
use super::vm::{unexpected_args, Machine};
use super::{malformed, quoted, Res};
use crate::ir::DType;

/// Where one tensor of a `torch.save` archive lives; nothing is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchTensorRef {
    /// Element type, from the storage class (`torch.FloatStorage` is F32, ...).
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Per-axis strides, in elements.
    pub stride: Vec<usize>,
    /// Index of the tensor's first element in its storage.
    pub storage_offset: usize,
    /// The archive entry holding the storage, relative to the archive's top folder:
    /// `data/<key>`.
    pub entry: String,
    /// Elements in the storage: the entry holds `storage_numel * dtype.size()` bytes.
    pub storage_numel: usize,
}

/// A storage named by a persistent id.
#[derive(Debug, Clone)]
pub(super) struct Storage {
    dtype: DType,
    key: String,
    numel: usize,
}

/// Tensors, their storages and dicts.
static POLICY: Policy = Policy {
    families: &[Family::Torch, Family::OrderedDict],
    builds: "a tensor, a storage of a supported type or a dict",
    decoder: "PyTorch pickle",
    file_kind: "PyTorch state dict",
    persistent_ids: true,
    dict_attributes: true,
};

/// Describes the tensors of a `torch.save`d state dict, given its `data.pkl`, in file order.
pub fn load_state_dict(pkl: &[u8]) -> Result<Vec<(String, TorchTensorRef)>> {
    decode(pkl).map_err(|fault| fault.into_error("the PyTorch state dict pickle"))
}

fn decode(pkl: &[u8]) -> Res<Vec<(String, TorchTensorRef)>> {
    let (root, objects) = Machine::new(&POLICY, pkl, 0).run()?;
    let dict = match &root {
        Value::Obj(id) => match &objects[*id] {
            Object::Dict(dict) => Some(dict),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| {
        malformed(format!(
            "the pickle holds {}, not a state dict (a dict of tensors)",
            describe(&root, &objects)
        ))
    })?;
    let mut names = HashSet::new();
    let mut storages: HashMap<&str, (DType, usize)> = HashMap::new();
    let mut out = Vec::with_capacity(dict.entries.len());
    for (key, value) in &dict.entries {
        let name = key.unique_text(&mut names, "tensor name", None)?;
        let tensor = match value {
            Value::Obj(id) => match &objects[*id] {
                Object::Tensor(tensor) => Some(tensor),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            malformed(format!(
                "entry {} holds {}, not a tensor",
                quoted(&name),
                describe(value, &objects)
            ))
        })?;
        let storage = (tensor.dtype, tensor.storage_numel);
        if *storages.entry(&tensor.entry).or_insert(storage) != storage {
            return Err(malformed(format!(
                "storage {} is described with two different types or sizes",
                quoted(&tensor.entry)
            )));
        }
        out.push((name, tensor.clone()));
    }
    Ok(out)
}

impl<'a> Machine<'a> {
    /// BINPERSID: `('storage', storage_type, key, location, numel)`.
    pub(super) fn persistent_load(&mut self, pid: &Value<'a>) -> Res<Value<'a>> {
        let unsupported = || {
            malformed(format!(
                "unsupported persistent id ({}); expected ('storage', storage_type, key, \
                 location, numel) as torch.save writes it",
                self.describe(pid)
            ))
        };
        let Value::Tuple(items) = pid else {
            return Err(unsupported());
        };
        let [Value::Str("storage"), storage_type, Value::Str(key), Value::Str(_location), Value::Int(numel)] =
            &items[..]
        else {
            return Err(unsupported());
        };
        let Value::Global(Global::TorchStorage(dtype)) = storage_type else {
            return Err(malformed(format!(
                "the storage type of storage {} is {}, not a storage class",
                quoted(key),
                self.describe(storage_type)
            )));
        };
        let plain = !key.is_empty()
            && key.len() <= 64
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain {
            return Err(malformed(format!(
                "storage key {} is not a plain name",
                quoted(key)
            )));
        }
        let numel = usize::try_from(*numel)
            .map_err(|_| malformed(format!("storage {} has {numel} elements", quoted(key))))?;
        Ok(self.new_object(Object::Storage(Storage {
            dtype: *dtype,
            key: (*key).to_owned(),
            numel,
        })))
    }

    /// REDUCE of one of the PyTorch stand-ins: `_rebuild_tensor_v2` or `_rebuild_tensor`.
    pub(super) fn torch_call(&mut self, global: Global, args: &[Value<'a>]) -> Res<Value<'a>> {
        let bad_args = || unexpected_args(global);
        let (storage, offset, size, stride) = match (global, args) {
            (
                Global::TorchRebuildTensorV2,
                [storage, offset, size, stride, requires_grad, hooks, metadata @ ..],
            ) => {
                let is_dict = |value: &Value<'a>| match value {
                    Value::Obj(id) => matches!(self.objects[*id], Object::Dict(_)),
                    _ => false,
                };
                let extras_ok = as_flag(requires_grad).is_some()
                    && is_dict(hooks)
                    && match metadata {
                        [] | [Value::None] => true,
                        [other] => is_dict(other),
                        _ => false,
                    };
                if !extras_ok {
                    return Err(bad_args());
                }
                (storage, offset, size, stride)
            }
            (Global::TorchRebuildTensor, [storage, offset, size, stride]) => {
                (storage, offset, size, stride)
            }
            (Global::TorchRebuildTensorV2 | Global::TorchRebuildTensor, _) => {
                return Err(bad_args())
            }
            _ => {
                return Err(malformed(format!(
                    "calling {} is not supported; storages come only from persistent ids",
                    global.name()
                )))
            }
        };
        let storage = match storage {
            Value::Obj(id) => match &self.objects[*id] {
                Object::Storage(storage) => Some(storage.clone()),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            malformed(format!(
                "the storage of a tensor is {}, not a persistent storage id",
                self.describe(storage)
            ))
        })?;
        let Value::Int(offset) = offset else {
            return Err(bad_args());
        };
        let storage_offset = usize::try_from(*offset)
            .map_err(|_| malformed(format!("negative storage offset {offset}")))?;
        let shape = shape_of(size)?;
        let stride = shape_of(stride)?;
        if stride.len() != shape.len() {
            return Err(malformed(format!(
                "a tensor of shape {shape:?} has strides {stride:?}"
            )));
        }
        check_within_storage(&shape, &stride, storage_offset, &storage)?;
        Ok(self.new_object(Object::Tensor(TorchTensorRef {
            dtype: storage.dtype,
            shape,
            stride,
            storage_offset,
            entry: format!("data/{}", storage.key),
            storage_numel: storage.numel,
        })))
    }
}

/// Every element the tensor addresses lies inside its storage.
fn check_within_storage(
    shape: &[usize],
    stride: &[usize],
    offset: usize,
    storage: &Storage,
) -> Res<()> {
    let end = if shape.contains(&0) {
        Some(offset)
    } else {
        shape
            .iter()
            .zip(stride)
            .try_fold(offset, |last, (&dim, &step)| {
                (dim - 1)
                    .checked_mul(step)
                    .and_then(|s| last.checked_add(s))
            })
            .and_then(|last| last.checked_add(1))
    };
    match end {
        Some(end) if end <= storage.numel => Ok(()),
        _ => Err(malformed(format!(
            "a tensor of shape {shape:?} with strides {stride:?} at offset {offset} reaches \
             past the {} elements of storage {}",
            storage.numel,
            quoted(&storage.key)
        ))),
    }
}

#[cfg(test)]
mod tests;
