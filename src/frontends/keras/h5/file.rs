//! One HDF5 file, read in pure Rust: string attributes, group members, and datasets read one at
//! a time when asked. This is the only file that names the HDF5 crate; everything above it uses
//! [`H5File`]'s methods, so the crate can be swapped here alone.
//!
//! The crate is `hdf5-reader` (read-only, no C). `hdf5-pure` also writes HDF5 and passed the
//! same Keras read tests, but it silently passes over soft and external links (a link to another
//! file reads as a missing name) and offers no hook on them; `hdf5-reader` resolves links through
//! resolvers the caller installs, so an external link is refused by name, and it exposes each
//! object's header messages, which gives the external-storage check and the offset of a
//! contiguous dataset for reads straight from the map.
//!
//! The file is memory-mapped and handed to the crate without a copy (an uncompressed member of a
//! `.keras` zip is opened in place the same way). A contiguous little-endian dataset is returned
//! as a slice of the map; anything else (chunked, compressed, big-endian, compact) is decoded by
//! the crate, one dataset and one chunk at a time, nothing cached between reads: its stored chunks
//! are read from the file into buffers of their own, so memory stays near the dataset read.
//!
//! Data is only ever read from the file given: a dataset stored in external files (the External
//! Data Files message, `H5Pset_external`) and an external link (`h5py.ExternalLink`) are refused
//! with an error naming the object and the file ([`H5File::check_inside`] checks a dataset
//! without reading it). Soft links within the file are followed.
use crate::ir::DType;
use crate::weights::mapped::{copy_releasing, file_range, read_exact_at, FileMap};
use crate::weights::{Tensor, TensorInfo};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use h5::messages::datatype::{Datatype, StringSize, VarLenKind};
use h5::messages::layout::DataLayout;
use h5::messages::HdfMessage;
use h5::ByteOrder;
use hdf5_reader as h5;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open HDF5 file over a map of its bytes.
pub struct H5File {
    /// The file as messages name it (`model.keras/model.weights.h5` for an archive member).
    pub path: PathBuf,
    file: h5::Hdf5File,
    /// The file's bytes (the whole file, or the zip member holding it).
    map: Bytes,
}

/// Refuses every external link: data is read from the given file only.
struct NoExternalLinks;

impl h5::ExternalLinkResolver for NoExternalLinks {
    fn resolve_external_link(&self, filename: &str) -> h5::error::Result<Option<h5::Hdf5File>> {
        Err(h5::error::Error::Other(format!(
            "an external link to file '{filename}' (links into other files are refused)"
        )))
    }
}

/// Refuses every external raw data file (also refused before any read, in `H5File::layout`).
struct NoExternalFiles;

impl h5::ExternalFileResolver for NoExternalFiles {
    fn resolve_external_file(
        &self,
        filename: &str,
    ) -> h5::error::Result<Option<h5::storage::DynStorage>> {
        Err(h5::error::Error::Other(format!(
            "data stored in external file '{filename}' (external storage is refused)"
        )))
    }
}

/// The file's bytes as the crate reads them: small reads (metadata) are views of the map; large
/// ones (the chunks of a compressed dataset) are read from the file into buffers of their own,
/// never touching the map, so decoding a dataset does not keep its stored bytes resident beside
/// the decoded ones (released map pages would come back: the kernel maps the neighbours of each
/// page touched).
struct Mapped(Bytes);

/// Reads at least this long (a page) are read from the file: stored chunks (h5py's are up to
/// 1 MiB before compression), not the small reads of metadata.
const COPY_FROM: usize = 4 << 10;

impl h5::Storage for Mapped {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_range(&self, offset: u64, len: usize) -> h5::error::Result<h5::StorageBuffer> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len)?))
            .filter(|r| r.end <= self.0.len());
        let Some(range) = range else {
            return Err(h5::error::Error::UnexpectedEof {
                offset,
                needed: len as u64,
                available: self.len().saturating_sub(offset),
            });
        };
        let part = self.0.slice(range);
        if len >= COPY_FROM {
            let copy = match file_range(&part) {
                Some((file, at)) => {
                    let mut buf = vec![0; len];
                    read_exact_at(&file, &mut buf, at)?;
                    buf
                }
                None => copy_releasing(&part),
            };
            Ok(h5::StorageBuffer::from_vec(copy))
        } else {
            h5::StorageBuffer::from_shared_owner(Arc::new(part), 0, len)
        }
    }
}

/// How a dataset is stored, from its object header.
struct Layout {
    /// Offset and length of a contiguous dataset's bytes, from the start of the HDF5 data.
    contiguous: Option<(u64, u64)>,
    chunked: bool,
    filtered: bool,
}

impl H5File {
    pub fn open(path: &Path) -> Result<H5File> {
        Self::open_as(path, path)
    }

    /// Opens `path`, named `shown` in messages (a member extracted from an archive).
    pub fn open_as(path: &Path, shown: &Path) -> Result<H5File> {
        let map = FileMap::open(path)?.bytes();
        Self::over(shown, map)
    }

    /// Opens the HDF5 file stored as bytes `range` of `path` (an uncompressed zip member, named
    /// `shown` in messages) without copying it.
    pub fn open_in_place(
        path: &Path,
        range: std::ops::Range<usize>,
        shown: &Path,
    ) -> Result<H5File> {
        let map = FileMap::open(path)?.bytes();
        if range.start > range.end || range.end > map.len() {
            bail!(
                "{}: member extends past the end of the file",
                shown.display()
            );
        }
        Self::over(shown, map.slice(range))
    }

    /// The file over its bytes; `path` is the name shown in messages.
    fn over(path: &Path, map: Bytes) -> Result<H5File> {
        let options = h5::OpenOptions::default()
            .with_chunk_cache_bytes(0)
            .with_external_link_resolver(Arc::new(NoExternalLinks))
            .with_external_file_resolver(Arc::new(NoExternalFiles));
        let file = h5::Hdf5File::from_storage_with_options(Arc::new(Mapped(map.clone())), options)
            .map_err(flat)
            .with_context(|| format!("cannot open {} as HDF5", path.display()))?;
        Ok(H5File {
            path: path.to_path_buf(),
            file,
            map,
        })
    }

    fn group(&self, path: &str) -> Result<h5::group::Group> {
        self.file
            .group(path)
            .map_err(flat)
            .with_context(|| format!("{}: group '{path}'", self.path.display()))
    }

    /// Whether `path` names a group; an error when reaching it needs what is refused (an
    /// external link) or the file is damaged.
    pub fn has_group(&self, path: &str) -> Result<bool> {
        match self.file.group(path) {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => {
                Err(flat(e)).with_context(|| format!("{}: group '{path}'", self.path.display()))
            }
        }
    }

    /// Names of the child groups of group `path`, sorted.
    pub fn child_groups(&self, path: &str) -> Result<Vec<String>> {
        let (mut groups, _) = self.members(path)?;
        groups.sort();
        Ok(groups)
    }

    /// Names of the child datasets of group `path`, sorted.
    pub fn child_datasets(&self, path: &str) -> Result<Vec<String>> {
        let (_, mut datasets) = self.members(path)?;
        datasets.sort();
        Ok(datasets)
    }

    fn members(&self, path: &str) -> Result<(Vec<String>, Vec<String>)> {
        self.group(path)?
            .member_names()
            .map_err(flat)
            .with_context(|| format!("{}: members of group '{path}'", self.path.display()))
    }

    /// A string attribute of the root or a group, if present.
    pub fn attr_string(&self, group: &str, name: &str) -> Result<Option<String>> {
        Ok(self.attr(group, name)?.and_then(|mut v| v.pop()))
    }

    /// A list-of-strings attribute (`layer_names`, `weight_names`); empty if absent.
    pub fn attr_strings(&self, group: &str, name: &str) -> Result<Vec<String>> {
        Ok(self.attr(group, name)?.unwrap_or_default())
    }

    fn attr(&self, group: &str, name: &str) -> Result<Option<Vec<String>>> {
        let at = || format!("{}: attribute '{name}' of '{group}'", self.path.display());
        let attrs = self
            .group(group)?
            .attributes()
            .map_err(flat)
            .with_context(at)?;
        match attrs.into_iter().find(|a| a.name == name) {
            Some(a) => read_strings(&a).with_context(at).map(Some),
            None => Ok(None),
        }
    }

    /// Dtype and shape of a dataset.
    pub fn info(&self, path: &str) -> Result<TensorInfo> {
        let (ds, _) = self.dataset(path)?;
        self.info_of(&ds, path)
    }

    /// Fails when dataset `path` is reached through an external link or keeps its data in
    /// external files. A name that resolves to nothing passes: reading it says so.
    pub fn check_inside(&self, path: &str) -> Result<()> {
        if let Some(ds) = self.find_dataset(path)? {
            self.layout(&ds, path)?;
        }
        Ok(())
    }

    fn info_of(&self, ds: &h5::Dataset, path: &str) -> Result<TensorInfo> {
        Ok(TensorInfo {
            dtype: dtype_of(ds.dtype())
                .with_context(|| format!("{}: dataset '{path}'", self.path.display()))?,
            shape: ds.shape().iter().map(|&d| d as usize).collect(),
        })
    }

    /// Dataset `path` and how it is stored; an error when it is missing or stored outside.
    fn dataset(&self, path: &str) -> Result<(h5::Dataset, Layout)> {
        let ds = self
            .find_dataset(path)?
            .with_context(|| format!("{}: no dataset '{path}'", self.path.display()))?;
        let layout = self.layout(&ds, path)?;
        Ok((ds, layout))
    }

    /// Dataset `path`, or none when the name resolves to nothing.
    fn find_dataset(&self, path: &str) -> Result<Option<h5::Dataset>> {
        match self.file.dataset(path) {
            Ok(ds) => Ok(Some(ds)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => {
                Err(flat(e)).with_context(|| format!("{}: dataset '{path}'", self.path.display()))
            }
        }
    }

    /// How dataset `path` is stored, from its object header; external storage is refused.
    fn layout(&self, ds: &h5::Dataset, path: &str) -> Result<Layout> {
        let at = || format!("{}: dataset '{path}'", self.path.display());
        let header = self
            .file
            .get_or_parse_header(ds.address())
            .map_err(flat)
            .with_context(at)?;
        let mut layout = Layout {
            contiguous: None,
            chunked: false,
            filtered: false,
        };
        for msg in &header.messages {
            match msg {
                HdfMessage::ExternalFiles(ef) => {
                    let names = self
                        .external_names(ef)
                        .unwrap_or_else(|_| "(names unreadable)".into());
                    bail!(
                        "{}: its data is stored outside the file, in external file(s) {} \
                         (HDF5 external storage); mmdnn reads only what the given file holds",
                        at(),
                        names
                    );
                }
                HdfMessage::DataLayout(dl) => match dl.layout {
                    DataLayout::Contiguous { address, size } => {
                        layout.contiguous = Some((address, size))
                    }
                    DataLayout::Chunked { .. } => layout.chunked = true,
                    DataLayout::Compact { .. } => {}
                },
                HdfMessage::FilterPipeline(_) => layout.filtered = true,
                _ => {}
            }
        }
        Ok(layout)
    }

    /// The file names of an External Data Files message, quoted and comma-separated.
    fn external_names(
        &self,
        ef: &h5::messages::external_files::ExternalFilesMessage,
    ) -> Result<String> {
        let sb = self.file.superblock();
        let heap = h5::local_heap::LocalHeap::parse_at_storage(
            self.file.storage(),
            ef.heap_address,
            sb.offset_size,
            sb.length_size,
        )?;
        let names: Vec<String> = ef
            .slots
            .iter()
            .map(|s| {
                heap.get_string_storage(s.name_offset, self.file.storage())
                    .map(|n| format!("'{n}'"))
            })
            .collect::<h5::error::Result<_>>()?;
        Ok(names.join(", "))
    }

    /// Reads one dataset: a slice of the map when it is stored contiguously, else decoded.
    pub fn read(&self, path: &str) -> Result<Tensor> {
        let (ds, layout) = self.dataset(path)?;
        let info = self.info_of(&ds, path)?;
        if let Some(bytes) = self.direct_bytes(&ds, &layout, &info) {
            return Tensor::new(info.dtype, info.shape, bytes);
        }
        let at = || format!("{}: reading dataset '{path}'", self.path.display());
        // Declared sizes are checked before anything is allocated: a dataset of fill value
        // only (no storage behind it) can claim any shape.
        let file_len = self.map.len();
        let (most, how) = if layout.chunked {
            (file_len.saturating_mul(MAX_EXPANSION), " even compressed")
        } else {
            (file_len, "")
        };
        let n = info.nbytes();
        if n > most {
            bail!(
                "{}: its shape {:?} needs {n} bytes, more than a {file_len}-byte file can \
                 hold{how}",
                at(),
                info.shape
            );
        }
        // Nor may a size the file could hold exceed the memory budget.
        crate::interp::budget::check(&info.shape, info.dtype.size(), "the dataset")
            .with_context(at)?;
        let mut data = if layout.chunked {
            decode_chunked(&ds, &info).with_context(at)?
        } else {
            ds.read_raw_bytes().map_err(flat).with_context(at)?
        };
        let elem = info.dtype.size();
        if byte_order(ds.dtype()) == Some(ByteOrder::BigEndian) && elem > 1 {
            data.chunks_exact_mut(elem).for_each(<[u8]>::reverse);
        }
        if info.dtype == DType::Bool {
            for b in &mut data {
                *b = u8::from(*b != 0);
            }
        }
        Tensor::new(info.dtype, info.shape, data)
    }

    /// The dataset's bytes in the map, when it is contiguous, unfiltered, allocated and
    /// little-endian.
    fn direct_bytes(&self, ds: &h5::Dataset, layout: &Layout, info: &TensorInfo) -> Option<Bytes> {
        let (address, size) = layout.contiguous?;
        let little =
            byte_order(ds.dtype()) == Some(ByteOrder::LittleEndian) || info.dtype.size() == 1;
        if !little || layout.filtered || info.dtype == DType::Bool {
            return None;
        }
        let len = info.nbytes();
        if size != len as u64 {
            return None;
        }
        let offset =
            usize::try_from(self.file.superblock().base_address.checked_add(address)?).ok()?;
        let end = offset.checked_add(len)?;
        (end <= self.map.len()).then(|| self.map.slice(offset..end))
    }
}

/// The crate's error as one message: the object path it adds is dropped (ours is in the
/// context), and its `source` would repeat the message in a `{:#}` chain.
fn flat(e: h5::error::Error) -> anyhow::Error {
    match e {
        h5::error::Error::Context { source, .. } => flat(*source),
        e => anyhow!("{e}"),
    }
}

/// How many times its file's size a chunked dataset may decode to: deflate's largest ratio
/// (1032:1), which no other filter the reader decodes exceeds on weights.
const MAX_EXPANSION: usize = 1032;

/// Decodes a chunked dataset one chunk at a time into a buffer of its own (row-major, in the
/// file's byte order); what no chunk covers holds the fill value. Each decoded chunk is dropped
/// once placed (the crate's whole-dataset read would also keep a copy of every dataset up to
/// 32 MB for the life of the file).
fn decode_chunked(ds: &h5::Dataset, info: &TensorInfo) -> Result<Vec<u8>> {
    let elem = info.dtype.size();
    let n = info
        .shape
        .iter()
        .try_fold(elem, |a, &d| a.checked_mul(d))
        .context("the dataset's size overflows")?;
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| anyhow!("cannot allocate {n} bytes for it"))?;
    out.resize(n, 0);
    let fill = ds.fill_value().and_then(|f| f.value.as_deref());
    if let Some(fill) = fill.filter(|v| v.len() == elem && v.iter().any(|&b| b != 0)) {
        out.chunks_exact_mut(elem)
            .for_each(|e| e.copy_from_slice(fill));
    }
    for chunk in ds.iter_chunks().map_err(flat)? {
        place(&chunk.map_err(flat)?, &info.shape, elem, &mut out)?;
    }
    Ok(out)
}

/// Copies the part of a decoded chunk that lies inside the dataset (of `shape`) into `out`, one
/// run along the last axis at a time.
fn place(chunk: &h5::DatasetChunk, shape: &[usize], elem: usize, out: &mut [u8]) -> Result<()> {
    let bad = || anyhow!("a chunk does not fit the dataset's shape {shape:?}");
    let rank = shape.len();
    let (at, cs) = (chunk.offsets(), chunk.shape());
    if rank == 0 || at.len() < rank || cs.len() < rank {
        return Err(bad());
    }
    let at: Vec<usize> = at[..rank].iter().map(|&d| d as usize).collect();
    let cs: Vec<usize> = cs[..rank].iter().map(|&d| d as usize).collect();
    let data = chunk.bytes();
    if cs.iter().try_fold(elem, |a, &d| a.checked_mul(d)) != Some(data.len()) {
        return Err(bad());
    }
    // The chunk's extent inside the dataset, per axis.
    let mut ext = Vec::with_capacity(rank);
    for i in 0..rank {
        match shape[i].checked_sub(at[i]) {
            Some(left) if left > 0 => ext.push(cs[i].min(left)),
            _ => return Ok(()),
        }
    }
    let run = ext[rank - 1] * elem;
    let mut idx = vec![0usize; rank - 1];
    loop {
        let (mut c, mut d) = (0, 0);
        for i in 0..rank - 1 {
            c = c * cs[i] + idx[i];
            d = d * shape[i] + at[i] + idx[i];
        }
        let c = c * cs[rank - 1] * elem;
        let d = (d * shape[rank - 1] + at[rank - 1]) * elem;
        let src = data.get(c..c + run).ok_or_else(bad)?;
        out.get_mut(d..d + run)
            .ok_or_else(bad)?
            .copy_from_slice(src);
        // Next run: the leading axes counted like digits, the last of them fastest.
        let mut axis = rank - 1;
        loop {
            if axis == 0 {
                return Ok(());
            }
            axis -= 1;
            idx[axis] += 1;
            if idx[axis] < ext[axis] {
                break;
            }
            idx[axis] = 0;
        }
    }
}

/// A name that resolves to nothing (as opposed to a refused link or a damaged file).
fn not_found(e: &h5::error::Error) -> bool {
    use h5::error::Error as E;
    match e {
        E::GroupNotFound(_) | E::DatasetNotFound(_) => true,
        E::Context { source, .. } => not_found(source),
        _ => false,
    }
}

fn byte_order(t: &Datatype) -> Option<ByteOrder> {
    match t {
        Datatype::FixedPoint { byte_order, .. } | Datatype::FloatingPoint { byte_order, .. } => {
            Some(*byte_order)
        }
        Datatype::Enum { base, .. } => byte_order(base),
        _ => None,
    }
}

/// Our dtype of an HDF5 numeric type (h5py writes bool as an enum of int8 FALSE/TRUE).
fn dtype_of(t: &Datatype) -> Result<DType> {
    Ok(match t {
        Datatype::FloatingPoint { size: 2, .. } => DType::F16,
        Datatype::FloatingPoint { size: 4, .. } => DType::F32,
        Datatype::FloatingPoint { size: 8, .. } => DType::F64,
        Datatype::FixedPoint { size, signed, .. } => match (size, signed) {
            (1, true) => DType::I8,
            (2, true) => DType::I16,
            (4, true) => DType::I32,
            (8, true) => DType::I64,
            (1, false) => DType::U8,
            (2, false) => DType::U16,
            (4, false) => DType::U32,
            (8, false) => DType::U64,
            _ => bail!("unsupported element type: {size}-byte integer"),
        },
        Datatype::Enum { base, members }
            if matches!(**base, Datatype::FixedPoint { size: 1, .. })
                && members.len() == 2
                && members.iter().any(|m| m.name == "FALSE")
                && members.iter().any(|m| m.name == "TRUE") =>
        {
            DType::Bool
        }
        t => bail!("unsupported element type {t:?}"),
    })
}

/// Reads a scalar or 1-d string attribute of any string kind (variable or fixed length, ASCII or
/// UTF-8). An empty array of another type (what h5py writes for an empty `weight_names`) reads
/// as none.
fn read_strings(attr: &h5::Attribute) -> Result<Vec<String>> {
    if let Some(strings) = &attr.decoded_strings {
        return Ok(strings.clone());
    }
    match &attr.datatype {
        Datatype::String {
            size: StringSize::Fixed(_),
            ..
        } => attr.read_strings().map_err(flat),
        Datatype::String { .. }
        | Datatype::VarLen {
            kind: VarLenKind::String,
            ..
        } => bail!("cannot decode its variable-length strings"),
        _ if attr.num_elements().map_err(flat)? == 0 => Ok(vec![]),
        t => bail!("expected strings, found {t:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::H5File;
    use std::path::Path;

    /// Datasets declared 1 GiB with no storage written (all fill value) in a 2 kB file, chunked
    /// and contiguous, are refused before their buffer is allocated (found by the keras_h5 fuzz
    /// target).
    #[test]
    fn a_dataset_larger_than_its_file_can_hold_is_refused() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/hostile/sparse.h5");
        let file = H5File::open(&path).unwrap();
        for (name, how) in [
            ("/chunked", "file can hold even compressed"),
            ("/contiguous", "file can hold"),
        ] {
            let err = format!("{:#}", file.read(name).unwrap_err());
            assert!(err.contains("sparse.h5"), "{err}");
            assert!(err.contains(&format!("dataset '{name}'")), "{err}");
            assert!(err.contains("needs 1073741824 bytes"), "{err}");
            assert!(err.contains(how), "{err}");
        }
    }
}
