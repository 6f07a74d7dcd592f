//! The weight store. IR weights are a NumPy `.npz` archive: a zip of `.npy` entries, stored
//! uncompressed so each can be memory-mapped, one entry per tensor, named
//! `<node>/<param>.npy` with both parts percent-encoded (`%`, `/`, `\`, `#`, control characters
//! and a leading `.` become `%XX`), so any node name maps to exactly one key and no entry can
//! escape the archive when unzipped. bfloat16 tensors, which NumPy lacks, are stored as their
//! `<u2` bit patterns under the key `<node>/<param>#bf16`; view them with
//! `array.view(ml_dtypes.bfloat16)`. The other types NumPy lacks take one byte per element
//! (`crate::ir::narrow`) under the key `<node>/<param>#<ml_dtypes name>`: the 8-bit floats as
//! `|u1` bit patterns (`#float8_e4m3fn`, `#float8_e4m3fnuz`, `#float8_e5m2`,
//! `#float8_e5m2fnuz`, `#float8_e8m0fnu`), FLOAT4E2M1 as `|u1` with its bit pattern in the low
//! nibble (`#float4_e2m1fn`), INT4 / INT2 as `|i1` values (`#int4`, `#int2`) and UINT4 / UINT2
//! as `|u1` values (`#uint4`, `#uint2`); each views as its ml_dtypes type with
//! `array.view(ml_dtypes.<name>)`.
//!
//! Archives are written one tensor at a time ([`NpzWriter`]) and read lazily ([`NpzReader`]).
//! MMdnn's own weights file, a pickled dict inside a `.npy`, is read by the restricted pickle
//! machine in [`pickle`] ([`pickle::mmdnn`]), which never executes anything. Weights computed
//! from stored ones (transposed, reordered, stacked, cast…) are described and read lazily by
//! [`derived`].
pub mod derived;
pub mod mapped;
pub mod npy;
pub mod npz;
pub mod permute;
pub mod pickle;
pub mod sink;
pub mod zip_read;
pub mod zip_writer;

use crate::ir::DType;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;

pub use npz::{NpzReader, NpzWriter};
pub use sink::Sink;

/// Dtype and shape of a stored tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// The most dims a stored tensor may have (NumPy's own limit).
pub const MAX_RANK: usize = 64;

/// Elements of a tensor of `shape`, with checked arithmetic: `None` when the count does not
/// fit a `usize`. Every size read from a file goes through this or [`checked_bytes`].
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Bytes of a tensor of `shape` with elements of `elem_size` bytes: `None` when they do not fit
/// in memory's addressable range (`isize::MAX`).
pub fn checked_bytes(shape: &[usize], elem_size: usize) -> Option<usize> {
    checked_numel(shape)?
        .checked_mul(elem_size)
        .filter(|&b| b <= isize::MAX as usize)
}

impl TensorInfo {
    /// The info of a tensor whose shape came from a file: refused when it has more than
    /// [`MAX_RANK`] dims or more bytes than memory can address (a count that would wrap).
    pub fn checked(dtype: DType, shape: Vec<usize>) -> Result<TensorInfo> {
        if shape.len() > MAX_RANK {
            bail!(
                "a tensor of {} dims (at most {MAX_RANK} are supported)",
                shape.len()
            );
        }
        if checked_bytes(&shape, dtype.size()).is_none() {
            bail!("a {dtype} tensor of shape {shape:?} has more bytes than memory can address");
        }
        Ok(TensorInfo { dtype, shape })
    }
    /// Elements (saturating: an info made by [`TensorInfo::checked`] never saturates).
    pub fn numel(&self) -> usize {
        checked_numel(&self.shape).unwrap_or(usize::MAX)
    }
    /// Bytes (saturating, like [`TensorInfo::numel`]).
    pub fn nbytes(&self) -> usize {
        self.numel().saturating_mul(self.dtype.size())
    }
}

/// A tensor's bytes: C order, little-endian; possibly a zero-copy view of a mapped file.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub info: TensorInfo,
    pub data: Bytes,
}

impl Tensor {
    pub fn new(dtype: DType, shape: Vec<usize>, data: impl Into<Bytes>) -> Result<Tensor> {
        let info = TensorInfo::checked(dtype, shape)?;
        let data = data.into();
        if data.len() != info.nbytes() {
            bail!(
                "a {} tensor of shape {:?} needs {} bytes, got {}",
                dtype,
                info.shape,
                info.nbytes(),
                data.len()
            );
        }
        Ok(Tensor { info, data })
    }

    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Result<Tensor> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor::new(DType::F32, shape, bytes)
    }

    /// The values converted to f32 (every float type and integers convert; bool gives 0/1).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        macro_rules! conv {
            ($t:ty, $n:expr) => {
                d.chunks_exact($n)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")) as f32)
                    .collect()
            };
        }
        match self.info.dtype {
            DType::F32 => conv!(f32, 4),
            DType::F64 => conv!(f64, 8),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            dt if dt.is_minifloat() => d
                .iter()
                .map(|&b| crate::ir::narrow::decode(dt, b))
                .collect(),
            DType::I8 | DType::I4 | DType::I2 => d.iter().map(|&b| b as i8 as f32).collect(),
            DType::U8 | DType::U4 | DType::U2 => d.iter().map(|&b| b as f32).collect(),
            DType::Bool => d.iter().map(|&b| (b != 0) as u8 as f32).collect(),
            DType::I16 => conv!(i16, 2),
            DType::U16 => conv!(u16, 2),
            DType::I32 => conv!(i32, 4),
            DType::U32 => conv!(u32, 4),
            DType::I64 => conv!(i64, 8),
            DType::U64 => conv!(u64, 8),
            dt => unreachable!("{dt} is a narrow float"),
        }
    }
}

/// Read access to a set of weights, keyed by (node name, parameter name).
pub trait WeightReader {
    /// Dtype and shape without reading the data.
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo>;
    /// The tensor; fails if it is absent.
    fn read(&self, node: &str, param: &str) -> Result<Tensor>;
    /// Every (node, param) key, in storage order.
    fn keys(&self) -> Vec<(String, String)>;
    /// Writes the tensor's bytes (C order, little-endian) to `w` and returns their number,
    /// releasing the pages of mapped files as they are written. A reader that computes a
    /// tensor from another can stream it instead of building it in memory.
    fn write_to(&self, node: &str, param: &str, w: &mut dyn Sink) -> Result<u64> {
        write_tensor(&self.read(node, param)?, w)
    }
}

/// A borrowed or boxed reader reads as the reader it holds (so a [`derived::DerivedWeights`]
/// can be built over a reader it does not own, or over a boxed one).
macro_rules! forward_reader {
    ($($holder:ty),*) => {$(
        impl<R: WeightReader + ?Sized> WeightReader for $holder {
            fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
                (**self).info(node, param)
            }
            fn read(&self, node: &str, param: &str) -> Result<Tensor> {
                (**self).read(node, param)
            }
            fn keys(&self) -> Vec<(String, String)> {
                (**self).keys()
            }
            fn write_to(&self, node: &str, param: &str, w: &mut dyn Sink) -> Result<u64> {
                (**self).write_to(node, param, w)
            }
        }
    )*};
}
forward_reader!(&R, Box<R>);

/// Writes a tensor's bytes to `w`, releasing mapped pages as written; returns their number.
pub fn write_tensor(t: &Tensor, w: &mut dyn Sink) -> Result<u64> {
    w.write_mapped(&t.data)?;
    Ok(t.data.len() as u64)
}

/// Weights held in memory (tests, legacy files, small graphs).
#[derive(Clone, Debug, Default)]
pub struct MemoryWeights {
    pub tensors: BTreeMap<(String, String), Tensor>,
}

impl MemoryWeights {
    pub fn insert(&mut self, node: &str, param: &str, t: Tensor) {
        self.tensors
            .insert((node.to_string(), param.to_string()), t);
    }
}

impl WeightReader for MemoryWeights {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        self.tensors
            .get(&(node.to_string(), param.to_string()))
            .map(|t| t.info.clone())
    }
    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        self.tensors
            .get(&(node.to_string(), param.to_string()))
            .cloned()
            .with_context(|| format!("no weight '{param}' for node '{node}'"))
    }
    fn keys(&self) -> Vec<(String, String)> {
        self.tensors.keys().cloned().collect()
    }
}

/// Opens a weights file of any supported kind: our `.npz`, or MMdnn's pickled `.npy`.
/// A missing `prefix.npy` whose `prefix.npz` exists opens the `.npz`, so staged scripts written
/// for MMdnn (which pass `prefix.npy` between steps) keep working.
pub fn open(path: &Path) -> Result<Box<dyn WeightReader>> {
    let path = resolve_path(path);
    let mut magic = [0u8; 6];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)
            .with_context(|| format!("cannot open weights file {}", path.display()))?;
        f.read_exact(&mut magic)
            .with_context(|| format!("{} is too short to be a weights file", path.display()))?;
    }
    if &magic[..4] == b"PK\x03\x04" || &magic[..4] == b"PK\x05\x06" {
        return Ok(Box::new(NpzReader::open(&path)?));
    }
    if magic == npy::MAGIC {
        let mut store = MemoryWeights::default();
        for (node, param, t) in pickle::mmdnn::read_legacy_weights(&path)? {
            let (dtype, _) = npy::dtype_of(&t.descr)?;
            store.insert(&node, &param, Tensor::new(dtype, t.shape, t.data)?);
        }
        return Ok(Box::new(store));
    }
    bail!(
        "{} is neither an mmdnn .npz weights archive nor an MMdnn .npy weights file",
        path.display()
    )
}

/// The file [`open`] reads for `path`: `prefix.npz` for a missing `prefix.npy` beside it.
pub fn resolve_path(path: &Path) -> std::path::PathBuf {
    if !path.exists() && path.extension().is_some_and(|e| e == "npy") {
        let npz = path.with_extension("npz");
        if npz.exists() {
            return npz;
        }
    }
    path.to_path_buf()
}

/// Encodes one key part: `%`, `/`, `\`, `#`, control characters and a leading `.` become `%XX`.
pub fn encode_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for (i, c) in part.char_indices() {
        let escape = matches!(c, '%' | '/' | '\\' | '#') || c.is_control() || (i == 0 && c == '.');
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Inverse of [`encode_part`].
pub fn decode_part(part: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part
                .get(i + 1..i + 3)
                .with_context(|| format!("bad escape in weight key '{part}'"))?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .with_context(|| format!("bad escape in weight key '{part}'"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).with_context(|| format!("weight key '{part}' is not UTF-8"))
}

/// The key suffix marking a dtype that NumPy lacks (stored as another type, see the module
/// doc); None for NumPy's own types.
fn marker(dtype: DType) -> Option<String> {
    match dtype {
        DType::BF16 => Some("bf16".to_string()),
        d if npy::dtype_of(npy::descr(d)).is_ok_and(|(stored, _)| stored != d) => {
            Some(d.name().to_string())
        }
        _ => None,
    }
}

/// The archive key (entry name without `.npy`) of a tensor.
pub fn key(node: &str, param: &str, dtype: DType) -> String {
    let base = format!("{}/{}", encode_part(node), encode_part(param));
    match marker(dtype) {
        Some(m) => format!("{base}#{m}"),
        None => base,
    }
}

/// Parses an archive key back into (node, param, the dtype its suffix marks, if any).
pub fn parse_key(key: &str) -> Result<(String, String, Option<DType>)> {
    let (key, marked) = match key.rsplit_once('#') {
        Some((k, m)) => {
            let d = DType::ALL
                .into_iter()
                .find(|&d| marker(d).as_deref() == Some(m))
                .with_context(|| format!("weight key '{key}' has an unknown type suffix"))?;
            (k, Some(d))
        }
        None => (key, None),
    };
    let (node, param) = key
        .split_once('/')
        .with_context(|| format!("weight key '{key}' is not of the form node/param"))?;
    Ok((decode_part(node)?, decode_part(param)?, marked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous() {
        let names = [
            "a/b", "a%2Fb", "..", ".x", "#bf16", "name:0", "ünï", "a\\b", "x\ny", "",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            for p in ["weights", "b/c"] {
                let k = key(n, p, DType::F32);
                assert!(seen.insert(k.clone()), "collision on {k}");
                assert!(!k.starts_with('.') && !k.contains("/."), "{k} could escape");
                assert_eq!(k.matches('/').count(), 1);
                assert_eq!(parse_key(&k).unwrap(), (n.to_string(), p.to_string(), None));
            }
        }
        let k = key("n", "w", DType::BF16);
        assert_eq!(k, "n/w#bf16");
        assert_eq!(
            parse_key(&k).unwrap(),
            ("n".into(), "w".into(), Some(DType::BF16))
        );
        assert_eq!(key("n", "w", DType::I4), "n/w#int4");
        assert_eq!(key("n", "w", DType::F8E5M2), "n/w#float8_e5m2");
        for d in DType::ALL {
            assert_eq!(parse_key(&key("a#b", "w", d)).unwrap().2.unwrap_or(d), d);
        }
        assert!(parse_key("n/w#float99").is_err());
    }

    #[test]
    fn to_f32_converts_each_dtype() {
        let t = Tensor::new(
            DType::I64,
            vec![2],
            [(-3i64).to_le_bytes(), 5i64.to_le_bytes()].concat(),
        )
        .unwrap();
        assert_eq!(t.to_f32(), vec![-3.0, 5.0]);
        let h = half::f16::from_f32(1.5).to_le_bytes();
        let t = Tensor::new(DType::F16, vec![1], h.to_vec()).unwrap();
        assert_eq!(t.to_f32(), vec![1.5]);
        let b = half::bf16::from_f32(-2.0).to_le_bytes();
        let t = Tensor::new(DType::BF16, vec![1], b.to_vec()).unwrap();
        assert_eq!(t.to_f32(), vec![-2.0]);
        // E5M2 0xC0 = -1.0 · 2^(16 − 15); INT4 stores −3 as a sign-extended byte.
        let t = Tensor::new(DType::F8E5M2, vec![1], vec![0xc0]).unwrap();
        assert_eq!(t.to_f32(), vec![-2.0]);
        let t = Tensor::new(DType::I4, vec![2], vec![0xfd, 7]).unwrap();
        assert_eq!(t.to_f32(), vec![-3.0, 7.0]);
        assert!(Tensor::new(DType::F32, vec![3], vec![0u8; 8]).is_err());
    }
}
