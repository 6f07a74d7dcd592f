//! The state dict of a generated module, written natively in the layout `torch.save(state_dict)`
//! produces: a zip (entries stored uncompressed, 64-byte aligned) holding `archive/data.pkl`
//! (a protocol-2 pickle of an `OrderedDict` of `torch._utils._rebuild_tensor_v2(...)` calls whose
//! storages are persistent ids `('storage', torch.FloatStorage, key, 'cpu', numel)`),
//! `archive/data/<key>` (each storage's raw little-endian bytes), `archive/version`,
//! `archive/byteorder`, `archive/.format_version`, `archive/.storage_alignment` and
//! `archive/.data/serialization_id`. Unsigned 16- to 64-bit tensors, which have no typed storage
//! class, are pickled as torch does: `_rebuild_tensor_v3` over an untyped storage plus the dtype.
//! It loads with `torch.load(path, weights_only=True)`.
//! Each tensor is a [`Derived`] weight of the converted graph (a weight reshaped, one direction
//! of a recurrent weight with its gates reordered, or a filled tensor), read through a
//! [`DerivedWeights`] over the graph's weights and written one at a time, streamed where the
//! reader streams; a transposed weight is written as stored and read back through strides,
//! without a copy.
use crate::ir::DType;
use crate::output::AtomicFile;
use crate::weights::derived::{Derived, DerivedWeights};
use crate::weights::zip_writer::ZipOut;
use crate::weights::{TensorInfo, WeightReader};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// One tensor of the state dict.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The state-dict key (`conv1.weight`).
    pub key: String,
    pub dtype: DType,
    /// The tensor's shape as the module expects it.
    pub shape: Vec<usize>,
    /// How the values are made from the weights of the converted graph.
    pub derived: Derived,
    /// The values are those of a 2-d `[b, a]` tensor, stored as they are and read back as
    /// `shape` `[a, b]` through strides.
    pub transposed: bool,
}

impl Entry {
    /// A contiguous entry whose values are `derived`.
    pub fn new(key: String, dtype: DType, shape: Vec<usize>, derived: Derived) -> Entry {
        Entry {
            key,
            dtype,
            shape,
            derived,
            transposed: false,
        }
    }

    /// An entry holding weight `param` of `node` (of `info`) as it is.
    pub fn weight(key: String, node: &str, param: &str, info: TensorInfo) -> Entry {
        Entry::new(key, info.dtype, info.shape, Derived::weight(node, param))
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The name of an archive's top folder, as `torch.save` writes for a stream.
const ARCHIVE: &str = "archive";

/// The node the entries are keyed under in the reader that makes them.
const STATE_DICT: &str = "state dict";

/// Writes the state dict `entries` (values made from `weights`) for `path`; it appears there
/// when the returned file is committed.
pub fn write_state_dict(
    path: &Path,
    entries: &[Entry],
    weights: &dyn WeightReader,
) -> Result<AtomicFile> {
    let mut values = DerivedWeights::over(weights);
    for e in entries {
        if values.get(STATE_DICT, &e.key).is_some() {
            bail!("state-dict key '{}' appears twice", e.key);
        }
        values.insert(STATE_DICT, &e.key, e.derived.clone());
    }
    let mut out = AtomicFile::create(path)?;
    let file = out.file().try_clone()?;
    let mut zip = ZipOut::new(file);
    let add = |zip: &mut ZipOut, name: &str, bytes: &[u8]| -> Result<()> {
        Ok(zip.add(&format!("{ARCHIVE}/{name}"), bytes)?)
    };
    add(&mut zip, "data.pkl", &pickle_state_dict(entries)?)?;
    add(&mut zip, ".format_version", b"1")?;
    add(&mut zip, ".storage_alignment", b"64")?;
    add(&mut zip, "byteorder", b"little")?;
    for (i, e) in entries.iter().enumerate() {
        let at = || format!("state-dict tensor '{}'", e.key);
        values
            .try_info(STATE_DICT, &e.key)
            .and_then(|info| check_fits(e, &info))
            .with_context(at)?;
        let nbytes = e.numel() * e.dtype.size();
        zip.start(&format!("{ARCHIVE}/data/{i}"), nbytes as u64)?;
        let written = values
            .write_to(STATE_DICT, &e.key, &mut zip)
            .with_context(at)?;
        if written != nbytes as u64 {
            bail!("{}: wrote {written} bytes, expected {nbytes}", at());
        }
    }
    add(&mut zip, "version", b"3\n")?;
    add(
        &mut zip,
        ".data/serialization_id",
        serialization_id(entries).as_bytes(),
    )?;
    zip.finish()
        .with_context(|| format!("cannot complete {}", path.display()))?;
    Ok(out)
}

/// A stable id for the archive (torch writes a random one; nothing reads it back).
fn serialization_id(entries: &[Entry]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for e in entries {
        for b in e.key.bytes().chain(e.numel().to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:020}{:020}", h, h.rotate_left(32))
}

/// Checks that the values made for an entry (of `info`) have its dtype and shape (a transposed
/// entry's reversed).
fn check_fits(e: &Entry, info: &TensorInfo) -> Result<()> {
    if info.dtype != e.dtype {
        bail!("the values are {}, expected {}", info.dtype, e.dtype);
    }
    let mut shape = e.shape.clone();
    if e.transposed {
        shape.reverse();
    }
    if info.shape != shape {
        bail!("the values have shape {:?}, expected {shape:?}", info.shape);
    }
    Ok(())
}

/// How torch pickles a dtype's storage: the legacy typed storage class, or (for the unsigned
/// types that have none) an untyped storage plus the dtype, rebuilt by `_rebuild_tensor_v3`.
fn storage_class(dtype: DType) -> Result<(&'static str, &'static str, Option<&'static str>)> {
    let legacy = |name| Ok(("torch", name, None));
    let untyped = |dtype| Ok(("torch.storage", "UntypedStorage", Some(dtype)));
    match dtype {
        DType::F32 => legacy("FloatStorage"),
        DType::F64 => legacy("DoubleStorage"),
        DType::F16 => legacy("HalfStorage"),
        DType::BF16 => legacy("BFloat16Storage"),
        DType::I64 => legacy("LongStorage"),
        DType::I32 => legacy("IntStorage"),
        DType::I16 => legacy("ShortStorage"),
        DType::I8 => legacy("CharStorage"),
        DType::U8 => legacy("ByteStorage"),
        DType::Bool => legacy("BoolStorage"),
        DType::U16 => untyped("uint16"),
        DType::U32 => untyped("uint32"),
        DType::U64 => untyped("uint64"),
        DType::F8E4M3FN => untyped("float8_e4m3fn"),
        DType::F8E4M3FNUZ => untyped("float8_e4m3fnuz"),
        DType::F8E5M2 => untyped("float8_e5m2"),
        DType::F8E5M2FNUZ => untyped("float8_e5m2fnuz"),
        d => bail!("torch has no {d} element type"),
    }
}

/// Contiguous strides of `shape`, or the strides that read a stored `[a, b]` as its transpose.
fn strides(e: &Entry) -> Vec<usize> {
    if e.transposed && e.shape.len() == 2 {
        return vec![1, e.shape[0]];
    }
    let mut s = vec![1; e.shape.len()];
    for i in (0..e.shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * e.shape[i + 1];
    }
    s
}

/// A protocol-2 pickle writer for the few opcodes a state dict needs.
struct Pickle(Vec<u8>);

impl Pickle {
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }
    fn str(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: usize) {
        if v < 0x100 {
            self.0.extend_from_slice(&[b'K', v as u8]);
        } else if v < 0x10000 {
            self.0.push(b'M');
            self.0.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v < 0x8000_0000 {
            self.0.push(b'J');
            self.0.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            // LONG1: little-endian two's complement, with a zero byte keeping it positive.
            let mut bytes = (v as u64).to_le_bytes().to_vec();
            while bytes.len() > 1 && bytes[bytes.len() - 1] == 0 && bytes[bytes.len() - 2] < 0x80 {
                bytes.pop();
            }
            self.0.extend_from_slice(&[0x8a, bytes.len() as u8]);
            self.0.extend_from_slice(&bytes);
        }
    }
    fn tuple(&mut self, items: &[usize]) {
        match items.len() {
            0 => self.0.push(b')'),
            n => {
                if n > 3 {
                    self.0.push(b'(');
                }
                for &v in items {
                    self.int(v);
                }
                self.0.push(match n {
                    1 => 0x85,
                    2 => 0x86,
                    3 => 0x87,
                    _ => b't',
                });
            }
        }
    }
    fn empty_ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.0.extend_from_slice(b")R");
    }
}

/// `data.pkl`: an OrderedDict of key → `_rebuild_tensor_v2(storage, 0, size, stride, False,
/// OrderedDict())`, storage `i` being persistent id `('storage', torch.<Class>, 'i', 'cpu', numel)`.
fn pickle_state_dict(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut p = Pickle(vec![0x80, 2]);
    p.empty_ordered_dict();
    if !entries.is_empty() {
        p.0.push(b'(');
        for (i, e) in entries.iter().enumerate() {
            let (module, class, untyped) = storage_class(e.dtype)?;
            p.str(&e.key);
            let rebuild = if untyped.is_some() {
                "_rebuild_tensor_v3"
            } else {
                "_rebuild_tensor_v2"
            };
            p.global("torch._utils", rebuild);
            p.0.push(b'(');
            p.0.push(b'(');
            p.str("storage");
            p.global(module, class);
            p.str(&i.to_string());
            p.str("cpu");
            // Typed storages count elements, untyped ones bytes.
            p.int(if untyped.is_some() {
                e.numel() * e.dtype.size()
            } else {
                e.numel()
            });
            p.0.extend_from_slice(b"tQ");
            p.int(0);
            p.tuple(&e.shape);
            p.tuple(&strides(e));
            p.0.push(0x89);
            p.empty_ordered_dict();
            if let Some(dtype) = untyped {
                p.global("torch", dtype);
            }
            p.0.extend_from_slice(b"tR");
        }
        p.0.push(b'u');
    }
    p.0.push(b'.');
    Ok(p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ints_and_longs() {
        let mut p = Pickle(vec![]);
        p.int(5);
        p.int(300);
        p.int(70_000);
        p.int(0x8000_0000);
        p.int(0x1_0000_0000);
        assert_eq!(
            p.0,
            [
                vec![b'K', 5],
                vec![b'M', 44, 1],
                vec![b'J', 0x70, 0x11, 1, 0],
                vec![0x8a, 5, 0, 0, 0, 0x80, 0],
                vec![0x8a, 5, 0, 0, 0, 0, 1],
            ]
            .concat()
        );
    }

    #[test]
    fn transposed_entries_use_strides() {
        let e = Entry {
            transposed: true,
            ..Entry::new(
                "fc.weight".into(),
                DType::F32,
                vec![10, 4],
                Derived::weight("fc", "weights"),
            )
        };
        assert_eq!(strides(&e), vec![1, 10]);
        let e = Entry {
            transposed: false,
            ..e
        };
        assert_eq!(strides(&e), vec![4, 1]);
    }
}
