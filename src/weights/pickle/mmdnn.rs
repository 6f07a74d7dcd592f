//! MMdnn's weights file: a `.npy` holding a pickled dict of dicts of NumPy arrays, decoded by
//! the restricted pickle machine with only the NumPy stand-ins allowed.
//!
//! Microsoft MMdnn 0.3.x saved IR weights with `np.save(path, weights)`, where `weights` is a
//! Python dict `{layer_name: {param_name: numpy.ndarray}}`. NumPy stores such a dict as a 0-d
//! *object* array: the `.npy` header says `descr '|O'`, `shape ()`, and the body is a pickle
//! of that array. Depending on the Python and NumPy versions that wrote the file, the pickle
//! uses protocol 2 (Python 2 strings as bytes, or Python 3 with raw data passed through
//! `_codecs.encode(..., 'latin1')`), protocol 3 (`np.save` in NumPy 1.x), protocol 4
//! (`np.save` in NumPy 2.x) or protocol 5 (`_frombuffer` over an in-band `bytearray`).
//! `collections.OrderedDict` is accepted as a plain dict (Python 2 files).
//!
//! The result is a flat list of `(layer, param, tensor)` triples in file order, each tensor
//! converted to C order and little-endian byte order. The decoded tensors (and any
//! `_codecs.encode` output) may not add up to more than the file itself.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};

use super::globals::{Family, Policy};
use super::numpy::{Array, NumpyTensor};
use super::value::{describe, Dict, Object, Value};
use super::vm::Machine;
use super::{malformed, quoted, refused, Res};
use crate::weights::npy;

/// NumPy arrays, and the dicts and bytes that hold them.
static POLICY: Policy = Policy {
    families: &[Family::NumPy, Family::Codecs, Family::OrderedDict],
    builds: "a NumPy array or dict",
    decoder: "legacy weights",
    file_kind: "MMdnn weights file",
    persistent_ids: false,
    dict_attributes: false,
};

/// Reads an MMdnn `.npy` weights file: returns (layer, param, tensor) triples in file order.
pub fn read_legacy_weights(path: &Path) -> Result<Vec<(String, String, NumpyTensor)>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read legacy MMdnn weights {}", path.display()))?;
    decode_legacy_weights(&bytes, &path.display().to_string())
}

/// Same, from bytes already in memory (`origin` is used in error messages).
pub fn decode_legacy_weights(
    bytes: &[u8],
    origin: &str,
) -> Result<Vec<(String, String, NumpyTensor)>> {
    decode(bytes).map_err(|fault| fault.into_error(&format!("legacy MMdnn weights {origin}")))
}

fn decode(bytes: &[u8]) -> Res<Vec<(String, String, NumpyTensor)>> {
    let body_offset = object_body_offset(bytes)?;
    let (root, objects) = Machine::new(&POLICY, bytes, body_offset).run()?;
    extract(&root, &objects, bytes.len())
}

/// Checks that the `.npy` header announces one pickled object; returns where the pickle starts.
fn object_body_offset(bytes: &[u8]) -> Res<usize> {
    let header =
        npy::parse_header_ignoring_order(bytes).map_err(|e| malformed(format!("{e:#}")))?;
    let kind = header.descr.trim_start_matches(['|', '<', '>', '=']);
    if !matches!(kind, "O" | "O4" | "O8") {
        return Err(malformed(format!(
            "it is a plain NumPy array (descr {}, shape {}), not an MMdnn weights dict",
            quoted(&header.descr),
            npy::shape_literal(&header.shape)
        )));
    }
    if !header.shape.is_empty() {
        return Err(malformed(format!(
            "it holds an object array of shape {}, not a single pickled weights dict (shape ())",
            npy::shape_literal(&header.shape)
        )));
    }
    Ok(header.data_offset)
}

// ---------------------------------------------------------------------------
// From the decoded object graph to (layer, param, tensor) triples
// ---------------------------------------------------------------------------

fn extract(
    root: &Value<'_>,
    objects: &[Object<'_>],
    file_len: usize,
) -> Res<Vec<(String, String, NumpyTensor)>> {
    let layers = top_level_dict(root, objects)?;
    let mut out = Vec::new();
    let mut total_bytes = 0usize;
    let mut layer_names = HashSet::new();
    for (layer_key, layer_value) in &layers.entries {
        let layer = layer_key.unique_text(&mut layer_names, "layer name", None)?;
        let params = match layer_value {
            Value::Obj(id) => match &objects[*id] {
                Object::Dict(dict) => Some(dict),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            malformed(format!(
                "layer {} holds {}, not a dict of arrays",
                quoted(&layer),
                describe(layer_value, objects)
            ))
        })?;
        let mut param_names = HashSet::new();
        for (param_key, param_value) in &params.entries {
            let param = param_key.unique_text(&mut param_names, "parameter", Some(&layer))?;
            let name = format!("{}/{}", layer, param);
            let array = match param_value {
                Value::Obj(id) => match &objects[*id] {
                    Object::Array(array) => Some(array),
                    _ => None,
                },
                _ => None,
            };
            let array = match array {
                Some(Array::Numeric(array)) => array,
                Some(Array::Object { .. }) => {
                    return Err(malformed(format!(
                        "parameter {} is an object array; only numeric arrays are supported",
                        quoted(&name)
                    )))
                }
                Some(Array::Pending) => {
                    return Err(malformed(format!(
                        "parameter {} is an array that never received its data",
                        quoted(&name)
                    )))
                }
                None => {
                    return Err(malformed(format!(
                        "parameter {} holds {}, not a NumPy array",
                        quoted(&name),
                        describe(param_value, objects)
                    )))
                }
            };
            total_bytes = total_bytes.saturating_add(array.byte_len());
            if total_bytes > file_len {
                return Err(refused(format!(
                    "the arrays add up to more than the file's {file_len} bytes (the pickle \
                     reuses the same array data; possible resource-exhaustion attack)"
                )));
            }
            out.push((layer.clone(), param, array.to_tensor()));
        }
    }
    Ok(out)
}

/// The weights dict: the single item of the 0-d object array `np.save`
/// pickles, or (leniently) a dict pickled directly.
fn top_level_dict<'o, 'a>(root: &Value<'a>, objects: &'o [Object<'a>]) -> Res<&'o Dict<'a>> {
    let not_a_dict = |what: &Value<'a>| {
        malformed(format!(
            "the pickle holds {}, not a dict of layers",
            describe(what, objects)
        ))
    };
    let Value::Obj(id) = root else {
        return Err(not_a_dict(root));
    };
    let inner = match &objects[*id] {
        Object::Dict(dict) => return Ok(dict),
        Object::Array(Array::Object { shape, items }) if shape.is_empty() => items,
        _ => return Err(not_a_dict(root)),
    };
    let item = match inner {
        Value::Obj(list) => match &objects[*list] {
            Object::List(items) if items.len() == 1 => &items[0],
            Object::List(items) => {
                return Err(malformed(format!(
                    "the 0-d object array holds {} items instead of 1",
                    items.len()
                )))
            }
            _ => return Err(not_a_dict(inner)),
        },
        _ => return Err(not_a_dict(inner)),
    };
    match item {
        Value::Obj(dict) => match &objects[*dict] {
            Object::Dict(dict) => Ok(dict),
            _ => Err(not_a_dict(item)),
        },
        _ => Err(not_a_dict(item)),
    }
}

#[cfg(test)]
mod tests;
