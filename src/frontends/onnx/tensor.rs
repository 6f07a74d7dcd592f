//! ONNX tensors as lazily read IR tensors. Raw data stays a zero-copy slice of the memory-mapped
//! model file; external data (`location`/`offset`/`length`, resolved inside the model's
//! directory only) is mapped on first read; typed fields (`float_data`, `int64_data`, ...) are
//! converted to little-endian bytes. The sub-byte types, which ONNX packs (two 4-bit or four
//! 2-bit elements to a byte, first in the low bits, also in `int32_data`), are unpacked to the
//! IR's one byte per element (`crate::ir::narrow`) when read.
use crate::ir::{narrow, DType};
use crate::proto::onnx::{tensor_proto, TensorProto};
use crate::weights::derived::LazyTensor;
use crate::weights::mapped::FileMap;
use crate::weights::{Tensor, TensorInfo};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The IR dtype of an ONNX `TensorProto.DataType` code.
pub fn dtype(code: i32) -> Result<DType> {
    use tensor_proto::DataType as D;
    Ok(match D::try_from(code) {
        Ok(D::Float) => DType::F32,
        Ok(D::Uint8) => DType::U8,
        Ok(D::Int8) => DType::I8,
        Ok(D::Uint16) => DType::U16,
        Ok(D::Int16) => DType::I16,
        Ok(D::Int32) => DType::I32,
        Ok(D::Int64) => DType::I64,
        Ok(D::Bool) => DType::Bool,
        Ok(D::Float16) => DType::F16,
        Ok(D::Double) => DType::F64,
        Ok(D::Uint32) => DType::U32,
        Ok(D::Uint64) => DType::U64,
        Ok(D::Bfloat16) => DType::BF16,
        Ok(D::Float8e4m3fn) => DType::F8E4M3FN,
        Ok(D::Float8e4m3fnuz) => DType::F8E4M3FNUZ,
        Ok(D::Float8e5m2) => DType::F8E5M2,
        Ok(D::Float8e5m2fnuz) => DType::F8E5M2FNUZ,
        Ok(D::Float8e8m0) => DType::F8E8M0,
        Ok(D::Float4e2m1) => DType::F4E2M1,
        Ok(D::Int4) => DType::I4,
        Ok(D::Uint4) => DType::U4,
        Ok(D::Int2) => DType::I2,
        Ok(D::Uint2) => DType::U2,
        Ok(other) => bail!("element type {} has no IR equivalent", other.as_str_name()),
        Err(_) => bail!("unknown element type code {code}"),
    })
}

/// A model file's directory, where external data must live; external files are mapped once.
pub struct ModelDir {
    dir: PathBuf,
    files: Mutex<HashMap<PathBuf, Arc<ExternalFile>>>,
}

/// An external data file, memory-mapped on first read.
pub struct ExternalFile {
    path: PathBuf,
    len: u64,
    map: Mutex<Option<Bytes>>,
}

impl ExternalFile {
    fn bytes(&self) -> Result<Bytes> {
        let mut map = self.map.lock().expect("external data lock");
        if let Some(b) = &*map {
            return Ok(b.clone());
        }
        let b = FileMap::open(&self.path)
            .context("cannot read external data")?
            .bytes();
        *map = Some(b.clone());
        Ok(b)
    }
}

impl ModelDir {
    pub fn new(model: &Path) -> ModelDir {
        let dir = match model.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        ModelDir {
            dir,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves an external data `location`: a relative path without `..` that stays inside
    /// the model's directory (symbolic links included).
    fn external(&self, location: &str) -> Result<Arc<ExternalFile>> {
        let rel = Path::new(location);
        if location.is_empty() {
            bail!("its external data has no location");
        }
        if let Some(bad) = rel
            .components()
            .find(|c| !matches!(c, Component::Normal(_)))
        {
            bail!(
                "external data location '{location}' is refused: it must be a relative path \
                 inside the model's directory (found {})",
                match bad {
                    Component::ParentDir => "'..'".to_string(),
                    Component::CurDir => "'.'".to_string(),
                    _ => "an absolute path".to_string(),
                }
            );
        }
        let path = self.dir.join(rel);
        let mut files = self.files.lock().expect("external data lock");
        if let Some(f) = files.get(&path) {
            return Ok(f.clone());
        }
        let real = path
            .canonicalize()
            .with_context(|| format!("cannot open external data file {}", path.display()))?;
        let root = self
            .dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", self.dir.display()))?;
        if !real.starts_with(&root) {
            bail!(
                "external data location '{location}' is refused: it resolves to {}, outside \
                 the model's directory {}",
                real.display(),
                root.display()
            );
        }
        let meta = std::fs::metadata(&real)
            .with_context(|| format!("cannot open external data file {}", path.display()))?;
        if !meta.is_file() {
            bail!("external data location '{location}' is not a file");
        }
        let f = Arc::new(ExternalFile {
            path: real,
            len: meta.len(),
            map: Mutex::new(None),
        });
        files.insert(path, f.clone());
        Ok(f)
    }
}

/// Where a tensor's bytes are.
#[derive(Clone)]
enum Source {
    Bytes(Bytes),
    External {
        file: Arc<ExternalFile>,
        offset: usize,
    },
}

/// A tensor whose bytes are read on demand: dtype and shape are known without reading.
#[derive(Clone)]
pub struct Lazy {
    pub info: TensorInfo,
    source: Source,
}

impl LazyTensor for Lazy {
    fn info(&self) -> TensorInfo {
        self.info.clone()
    }
    fn read(&self) -> Result<Tensor> {
        self.tensor()
    }
}

impl Lazy {
    /// A tensor already in memory.
    pub fn ready(t: Tensor) -> Lazy {
        Lazy {
            info: t.info,
            source: Source::Bytes(t.data),
        }
    }

    /// The tensor's bytes (mapping its external file on first use).
    pub fn tensor(&self) -> Result<Tensor> {
        let data = match &self.source {
            Source::Bytes(b) => b.clone(),
            Source::External { file, offset } => {
                let map = file.bytes()?;
                let end = offset + stored_len(&self.info);
                if end > map.len() {
                    bail!(
                        "external data file {} is shorter than the tensor needs ({} < {end} bytes)",
                        file.path.display(),
                        map.len()
                    );
                }
                let stored = map.slice(*offset..end);
                if self.info.dtype.bits() < 8 {
                    Bytes::from(narrow::unpack(self.info.dtype, &stored, self.info.numel())?)
                } else {
                    stored
                }
            }
        };
        Tensor::new(self.info.dtype, self.info.shape.clone(), data)
    }
}

/// Decodes an ONNX tensor (its data is not read when it is external).
pub fn decode(t: &TensorProto, dir: &ModelDir) -> Result<Lazy> {
    decode_inner(t, dir).with_context(|| format!("tensor '{}'", t.name))
}

fn decode_inner(t: &TensorProto, dir: &ModelDir) -> Result<Lazy> {
    let dtype = dtype(t.data_type)?;
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow!("negative dim {d} in {:?}", t.dims)))
        .collect::<Result<Vec<usize>>>()?;
    let info = TensorInfo::checked(dtype, shape)?;
    if t.segment.is_some() {
        bail!("segmented tensors are not supported");
    }
    let external = t.data_location == tensor_proto::DataLocation::External as i32;
    if external {
        return external_tensor(t, info, dir);
    }
    let n = info.numel();
    if !t.raw_data.is_empty() || n == 0 {
        if t.raw_data.len() != stored_len(&info) {
            bail!(
                "raw_data has {} bytes; a {} tensor of shape {:?} needs {}",
                t.raw_data.len(),
                dtype,
                info.shape,
                stored_len(&info)
            );
        }
        let data = if dtype.bits() < 8 {
            Bytes::from(narrow::unpack(dtype, &t.raw_data, n)?)
        } else {
            t.raw_data.clone()
        };
        return Ok(Lazy {
            info,
            source: Source::Bytes(data),
        });
    }
    let bytes = typed_bytes(t, dtype, n)?;
    Ok(Lazy {
        info,
        source: Source::Bytes(Bytes::from(bytes)),
    })
}

/// Bytes of a tensor as ONNX stores it (sub-byte types packed).
fn stored_len(info: &TensorInfo) -> usize {
    narrow::packed_len(info.dtype, info.numel())
}

fn external_tensor(t: &TensorProto, info: TensorInfo, dir: &ModelDir) -> Result<Lazy> {
    let mut location = None;
    let mut offset = 0usize;
    let mut length = None;
    for e in &t.external_data {
        let number = || -> Result<usize> {
            e.value
                .parse()
                .with_context(|| format!("external data {} '{}' is not a number", e.key, e.value))
        };
        match e.key.as_str() {
            "location" => location = Some(e.value.as_str()),
            "offset" => offset = number()?,
            "length" => length = Some(number()?),
            _ => {} // "checksum" and future keys do not change where the bytes are
        }
    }
    let file = dir.external(location.unwrap_or(""))?;
    let need = stored_len(&info);
    if let Some(len) = length {
        if len != need {
            bail!(
                "external data length {len} does not match its {} tensor of shape {:?} \
                 ({need} bytes)",
                info.dtype,
                info.shape
            );
        }
    }
    if (offset as u64).saturating_add(need as u64) > file.len {
        bail!(
            "external data file {} has {} bytes; the tensor needs bytes {offset}..{}",
            file.path.display(),
            file.len,
            offset + need
        );
    }
    Ok(Lazy {
        info,
        source: Source::External { file, offset },
    })
}

/// Little-endian bytes from the typed field that holds a tensor of `dtype`.
fn typed_bytes(t: &TensorProto, dtype: DType, n: usize) -> Result<Vec<u8>> {
    let check = |field: &str, len: usize| -> Result<()> {
        if len != n {
            bail!("{field} has {len} values; the tensor has {n} elements");
        }
        Ok(())
    };
    let mut out = Vec::with_capacity(n * dtype.size());
    match dtype {
        DType::F32 => {
            check("float_data", t.float_data.len())?;
            t.float_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::F64 => {
            check("double_data", t.double_data.len())?;
            t.double_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::I64 => {
            check("int64_data", t.int64_data.len())?;
            t.int64_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::U32 | DType::U64 => {
            check("uint64_data", t.uint64_data.len())?;
            for &v in &t.uint64_data {
                out.extend_from_slice(&v.to_le_bytes()[..dtype.size()]);
            }
        }
        // Sub-byte types: packed bytes, one per int32.
        d if d.bits() < 8 => {
            let packed: Vec<u8> = t.int32_data.iter().map(|&v| v as u8).collect();
            if packed.len() != narrow::packed_len(d, n) {
                bail!(
                    "int32_data has {} values; {n} packed {d} elements need {}",
                    packed.len(),
                    narrow::packed_len(d, n)
                );
            }
            out = narrow::unpack(d, &packed, n)?;
        }
        // The rest live in int32_data (16- and 8-bit floats as their bit patterns).
        _ => {
            check("int32_data", t.int32_data.len())?;
            for &v in &t.int32_data {
                out.extend_from_slice(&v.to_le_bytes()[..dtype.size()]);
            }
        }
    }
    Ok(out)
}
