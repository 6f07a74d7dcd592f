//! HDF5 access for Keras files: string attributes, the index of each layer's weight datasets in
//! the three layouts Keras writes, and lazy reads of one dataset at a time.
//!
//! Layouts: Keras 2 and Keras 3 "legacy" `.h5` keep one group per top-level layer (under
//! `model_weights/` in a full-model file, at the root in a `save_weights` file) whose
//! `weight_names` attribute lists its datasets in order (`conv/kernel:0`, `lstm/lstm_cell/bias`;
//! a nested model's group holds all of its layers' weights). Keras 3 `.weights.h5` (and the
//! `model.weights.h5` inside a `.keras` zip) keeps `layers/<path>/vars/0..n`, where `<path>` is
//! derived from the class and the layer's own name is the `name` attribute of `vars`; sub-objects
//! (an RNN's `cell`, a wrapper's `forward_layer`, a nested model's `layers/…`) are child groups.
//!
//! A contiguous little-endian dataset is read straight from the memory-mapped file at its offset;
//! anything else (chunked, compressed, big-endian) goes through the HDF5 library. An HDF5 file
//! stored uncompressed inside a zip (`.keras`) is opened in place: HDF5's in-memory driver is
//! handed the mapped bytes through file-image callbacks that never copy them.
use crate::ir::DType;
use crate::weights::mapped::FileMap;
use crate::weights::{Tensor, TensorInfo};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdf5::types::{
    FixedAscii, FixedUnicode, FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode,
};
use hdf5_metno as hdf5;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// An open HDF5 file plus a map of its bytes for direct reads.
pub struct H5File {
    pub path: PathBuf,
    file: hdf5::File,
    map: Option<Bytes>,
}

impl H5File {
    pub fn open(path: &Path) -> Result<H5File> {
        let file = hdf5::File::open(path)
            .with_context(|| format!("cannot open {} as HDF5", path.display()))?;
        let map = FileMap::open(path).ok().map(|m| m.bytes());
        Ok(H5File {
            path: path.to_path_buf(),
            file,
            map,
        })
    }

    /// Opens the HDF5 file stored as bytes `range` of `path` (an uncompressed zip member)
    /// without copying it.
    pub fn open_in_place(path: &Path, range: std::ops::Range<usize>) -> Result<H5File> {
        let at = || format!("cannot open the HDF5 data in {} in place", path.display());
        let map = FileMap::open(path).with_context(at)?.bytes();
        if range.end > map.len() {
            bail!(
                "{}: member extends past the end of the file",
                path.display()
            );
        }
        let image = map.slice(range);
        let fapl = hdf5::plist::FileAccess::build()
            .core_filebacked(false)
            .finish()
            .with_context(at)?;
        // A name of no file on disk, as HDF5's own H5LTopen_file_image uses.
        let name =
            std::ffi::CString::new(format!("mmdnn_image_{:p}", image.as_ptr())).with_context(at)?;
        let id = hdf5::sync::sync(|| in_place::open(fapl.id(), &name, image.as_ptr(), image.len()))
            .with_context(at)?;
        // SAFETY: `id` is a file handle just opened; the image it reads stays mapped in `map`,
        // which outlives `file` (fields drop in declaration order).
        let file = unsafe { hdf5::from_id::<hdf5::File>(id) }.with_context(at)?;
        Ok(H5File {
            path: path.to_path_buf(),
            file,
            map: Some(image),
        })
    }

    pub fn group(&self, path: &str) -> Result<hdf5::Group> {
        self.file
            .group(path)
            .with_context(|| format!("{}: no group '{path}'", self.path.display()))
    }

    pub fn has_group(&self, path: &str) -> bool {
        self.file.link_exists(path) && self.file.group(path).is_ok()
    }

    /// A string attribute of the root or a group, if present.
    pub fn attr_string(&self, group: &str, name: &str) -> Result<Option<String>> {
        let g = self.group(group)?;
        if !g.attr_names()?.iter().any(|a| a == name) {
            return Ok(None);
        }
        let mut v = read_strings(&g.attr(name)?)
            .with_context(|| format!("{}: attribute '{name}' of '{group}'", self.path.display()))?;
        Ok(v.pop())
    }

    /// A list-of-strings attribute (`layer_names`, `weight_names`); empty if absent.
    pub fn attr_strings(&self, group: &str, name: &str) -> Result<Vec<String>> {
        let g = self.group(group)?;
        if !g.attr_names()?.iter().any(|a| a == name) {
            return Ok(vec![]);
        }
        read_strings(&g.attr(name)?)
            .with_context(|| format!("{}: attribute '{name}' of '{group}'", self.path.display()))
    }

    /// Dtype and shape of a dataset.
    pub fn info(&self, path: &str) -> Result<TensorInfo> {
        let ds = self.dataset(path)?;
        Ok(TensorInfo {
            dtype: dtype_of(&ds.dtype()?.to_descriptor()?)
                .with_context(|| format!("{}: dataset '{path}'", self.path.display()))?,
            shape: ds.shape(),
        })
    }

    fn dataset(&self, path: &str) -> Result<hdf5::Dataset> {
        self.file
            .dataset(path)
            .with_context(|| format!("{}: no dataset '{path}'", self.path.display()))
    }

    /// Reads one dataset: straight from the map when it is stored contiguously, else through
    /// the HDF5 library.
    pub fn read(&self, path: &str) -> Result<Tensor> {
        let ds = self.dataset(path)?;
        let info = self.info(path)?;
        if let Some(bytes) = self.direct_bytes(&ds, &info) {
            return Tensor::new(info.dtype, info.shape, bytes);
        }
        let at = || format!("{}: reading dataset '{path}'", self.path.display());
        let data: Vec<u8> = match info.dtype {
            DType::F32 => le_bytes(ds.read_raw::<f32>().with_context(at)?, f32::to_le_bytes),
            DType::F64 => le_bytes(ds.read_raw::<f64>().with_context(at)?, f64::to_le_bytes),
            DType::I32 => le_bytes(ds.read_raw::<i32>().with_context(at)?, i32::to_le_bytes),
            DType::I64 => le_bytes(ds.read_raw::<i64>().with_context(at)?, i64::to_le_bytes),
            DType::I8 => le_bytes(ds.read_raw::<i8>().with_context(at)?, i8::to_le_bytes),
            DType::U8 => ds.read_raw::<u8>().with_context(at)?,
            DType::Bool => ds
                .read_raw::<bool>()
                .with_context(at)?
                .into_iter()
                .map(u8::from)
                .collect(),
            dt => bail!("{}: {dt} datasets must be stored contiguously", at()),
        };
        Tensor::new(info.dtype, info.shape, data)
    }

    /// The dataset's bytes in the map, when it is contiguous, allocated and little-endian.
    fn direct_bytes(&self, ds: &hdf5::Dataset, info: &TensorInfo) -> Option<Bytes> {
        let map = self.map.as_ref()?;
        let little = ds.dtype().ok()?.byte_order() == hdf5::datatype::ByteOrder::LittleEndian
            || info.dtype.size() == 1;
        if !little || ds.is_chunked() || info.dtype == DType::Bool {
            return None;
        }
        let offset = ds.offset()? as usize;
        let len = info.nbytes();
        if ds.storage_size() as usize != len {
            return None;
        }
        let end = offset.checked_add(len)?;
        (end <= map.len()).then(|| map.slice(offset..end))
    }
}

/// Opening a read-only file image in place: the callbacks hand HDF5 the caller's buffer for
/// every "allocation" and skip every copy, as HDF5's own `H5LTopen_file_image` does with
/// `H5LT_FILE_IMAGE_DONT_COPY`.
mod in_place {
    use anyhow::{bail, Result};
    use hdf5_metno_sys::h5::herr_t;
    use hdf5_metno_sys::h5f::{H5Fopen, H5F_ACC_RDONLY};
    use hdf5_metno_sys::h5fd::{H5FD_file_image_callbacks_t, H5FD_file_image_op_t};
    use hdf5_metno_sys::h5i::hid_t;
    use hdf5_metno_sys::h5p::{H5Pset_file_image, H5Pset_file_image_callbacks};
    use std::ffi::{c_void, CStr};

    extern "C" fn image_malloc(
        _: usize,
        _: H5FD_file_image_op_t,
        udata: *mut c_void,
    ) -> *mut c_void {
        udata
    }
    extern "C" fn image_memcpy(
        dest: *mut c_void,
        _: *const c_void,
        _: usize,
        _: H5FD_file_image_op_t,
        _: *mut c_void,
    ) -> *mut c_void {
        dest
    }
    extern "C" fn image_realloc(
        _: *mut c_void,
        _: usize,
        _: H5FD_file_image_op_t,
        _: *mut c_void,
    ) -> *mut c_void {
        std::ptr::null_mut()
    }
    extern "C" fn image_free(_: *mut c_void, _: H5FD_file_image_op_t, _: *mut c_void) -> herr_t {
        0
    }
    unsafe extern "C" fn udata_copy(udata: *mut c_void) -> *mut c_void {
        udata
    }
    unsafe extern "C" fn udata_free(_: *mut c_void) -> herr_t {
        0
    }

    /// Opens `len` bytes at `image` read-only through a core-driver `fapl`.
    pub fn open(fapl: hid_t, name: &CStr, image: *const u8, len: usize) -> Result<hid_t> {
        let mut callbacks = H5FD_file_image_callbacks_t {
            image_malloc: Some(image_malloc),
            image_memcpy: Some(image_memcpy),
            image_realloc: Some(image_realloc),
            image_free: Some(image_free),
            udata_copy: Some(udata_copy),
            udata_free: Some(udata_free),
            udata: image as *mut c_void,
        };
        // SAFETY: HDF5 reads the image only (the file is opened read-only) and never frees it;
        // the callbacks keep it from being copied or released.
        unsafe {
            if H5Pset_file_image_callbacks(fapl, &mut callbacks) < 0
                || H5Pset_file_image(fapl, image as *mut c_void, len) < 0
            {
                bail!("HDF5 refused the file image");
            }
            let id = H5Fopen(name.as_ptr(), H5F_ACC_RDONLY, fapl);
            if id < 0 {
                bail!("HDF5 cannot open the file image");
            }
            Ok(id)
        }
    }
}

fn le_bytes<T, const N: usize>(values: Vec<T>, f: fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * N);
    for v in values {
        out.extend_from_slice(&f(v));
    }
    out
}

/// Our dtype of an HDF5 numeric type.
fn dtype_of(t: &TypeDescriptor) -> Result<DType> {
    Ok(match t {
        TypeDescriptor::Float(FloatSize::U4) => DType::F32,
        TypeDescriptor::Float(FloatSize::U8) => DType::F64,
        TypeDescriptor::Integer(IntSize::U1) => DType::I8,
        TypeDescriptor::Integer(IntSize::U2) => DType::I16,
        TypeDescriptor::Integer(IntSize::U4) => DType::I32,
        TypeDescriptor::Integer(IntSize::U8) => DType::I64,
        TypeDescriptor::Unsigned(IntSize::U1) => DType::U8,
        TypeDescriptor::Unsigned(IntSize::U2) => DType::U16,
        TypeDescriptor::Unsigned(IntSize::U4) => DType::U32,
        TypeDescriptor::Unsigned(IntSize::U8) => DType::U64,
        TypeDescriptor::Boolean => DType::Bool,
        t => bail!("unsupported element type {t}"),
    })
}

/// Reads a scalar or 1-d string attribute of any string kind (variable or fixed length, ASCII or
/// UTF-8). An empty numeric array (what h5py writes for an empty `weight_names`) reads as none.
fn read_strings(attr: &hdf5::Attribute) -> Result<Vec<String>> {
    macro_rules! fixed {
        ($ty:ident, $n:expr) => {
            attr.read_raw::<$ty<$n>>()?
                .iter()
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect()
        };
    }
    macro_rules! sized {
        ($ty:ident, $len:expr) => {
            match $len {
                0..=256 => fixed!($ty, 256),
                257..=65536 => fixed!($ty, 65536),
                65537..=1048576 => fixed!($ty, 1048576),
                _ => fixed!($ty, 33554432),
            }
        };
    }
    let desc = attr.dtype()?.to_descriptor()?;
    Ok(match desc {
        TypeDescriptor::VarLenUnicode => attr
            .read_raw::<VarLenUnicode>()?
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        TypeDescriptor::VarLenAscii => attr
            .read_raw::<VarLenAscii>()?
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        TypeDescriptor::FixedAscii(n) => sized!(FixedAscii, n),
        TypeDescriptor::FixedUnicode(n) => sized!(FixedUnicode, n),
        _ if attr.size() == 0 => vec![],
        t => bail!("expected strings, found {t}"),
    })
}

/// One weight variable of a layer: where it is stored and its name relative to the layer
/// (`kernel`, `lstm_cell/bias`, `forward_lstm/lstm_cell/kernel` in `.h5`; `0`, `cell/2`,
/// `forward_layer/cell/0`, `query_dense/1` in Keras 3 weight files).
#[derive(Clone, Debug)]
pub struct Var {
    pub local: String,
    pub path: String,
}

/// Where a model's layers keep their weights.
#[derive(Clone, Debug)]
pub enum Scope {
    /// `.h5` layout: layer groups under `root` (`/model_weights` or `/`); inside a nested
    /// model, its group (`group`) holds every weight, named with the layers' names.
    Legacy { root: String, group: Option<String> },
    /// Keras 3 layout: the container group whose children are the layers (`/layers`).
    V3 { layers: String },
}

/// The weight index of a file: lists each layer's variables.
pub struct WeightIndex {
    pub file: H5File,
    /// For the Keras 3 layout: container group → (layer name → group path).
    v3_names: std::cell::RefCell<HashMap<String, HashMap<String, String>>>,
}

impl WeightIndex {
    pub fn new(file: H5File) -> WeightIndex {
        WeightIndex {
            file,
            v3_names: Default::default(),
        }
    }

    /// The scope of the top-level model, recognised from the file's layout.
    pub fn root_scope(&self) -> Result<Scope> {
        let f = &self.file;
        if f.has_group("/model_weights") {
            return Ok(Scope::Legacy {
                root: "/model_weights".into(),
                group: None,
            });
        }
        if f.has_group("/layers") {
            return Ok(Scope::V3 {
                layers: "/layers".into(),
            });
        }
        if !f.attr_strings("/", "layer_names")?.is_empty() {
            return Ok(Scope::Legacy {
                root: "/".into(),
                group: None,
            });
        }
        bail!(
            "{} holds no Keras weights (no model_weights/ or layers/ group, no layer_names)",
            f.path.display()
        )
    }

    /// The scope of a nested model called `name` inside `scope` (`saved_as`: its group name in
    /// the Keras 3 layout when the file does not record names).
    pub fn nested(&self, scope: &Scope, name: &str, saved_as: &str) -> Result<Scope> {
        Ok(match scope {
            Scope::Legacy { root, group: None } => Scope::Legacy {
                root: root.clone(),
                group: Some(join(root, name)),
            },
            Scope::Legacy { .. } => scope.clone(),
            Scope::V3 { layers } => Scope::V3 {
                layers: format!("{}/layers", self.v3_group(layers, name, saved_as)?),
            },
        })
    }

    /// The variables of layer `name` in `scope`, in the order Keras stores them.
    pub fn vars(&self, scope: &Scope, name: &str, saved_as: &str) -> Result<Vec<Var>> {
        match scope {
            Scope::Legacy { root, group: None } => {
                let g = join(root, name);
                if !self.file.has_group(&g) {
                    return Ok(vec![]);
                }
                let names = self.file.attr_strings(&g, "weight_names")?;
                Ok(names
                    .iter()
                    .map(|w| Var {
                        local: local_name(w, name),
                        path: join(&g, w),
                    })
                    .collect())
            }
            Scope::Legacy { group: Some(g), .. } => {
                let names = self.file.attr_strings(g, "weight_names")?;
                Ok(names
                    .iter()
                    .filter(|w| {
                        let parts: Vec<&str> = w.split('/').collect();
                        parts[..parts.len() - 1].contains(&name)
                    })
                    .map(|w| Var {
                        local: local_name(w, name),
                        path: join(g, w),
                    })
                    .collect())
            }
            Scope::V3 { layers } => {
                let group = self.v3_group(layers, name, saved_as)?;
                let mut out = vec![];
                if self.file.has_group(&group) {
                    self.walk_v3(&group, "", &mut out)?;
                }
                Ok(out)
            }
        }
    }

    /// The group of layer `name`: the child of `layers` whose `vars` are named so, else the
    /// child `saved_as`.
    fn v3_group(&self, layers: &str, name: &str, saved_as: &str) -> Result<String> {
        Ok(match self.v3_path(layers, name)? {
            Some(p) => p,
            None => join(layers, saved_as),
        })
    }

    /// Group of layer `name` among the children of `layers` (matched by `vars/@name`).
    fn v3_path(&self, layers: &str, name: &str) -> Result<Option<String>> {
        if !self.v3_names.borrow().contains_key(layers) {
            let mut names = HashMap::new();
            if self.file.has_group(layers) {
                for child in self.file.group(layers)?.member_names()? {
                    let p = join(layers, &child);
                    let vars = join(&p, "vars");
                    let own = if self.file.has_group(&vars) {
                        self.file.attr_string(&vars, "name")?
                    } else {
                        None
                    };
                    if let Some(own) = own {
                        names.insert(own, p);
                    }
                }
            }
            self.v3_names.borrow_mut().insert(layers.to_string(), names);
        }
        Ok(self.v3_names.borrow()[layers].get(name).cloned())
    }

    /// Collects `vars/0..n` of `group`, then of its child objects (depth first, by name).
    fn walk_v3(&self, group: &str, prefix: &str, out: &mut Vec<Var>) -> Result<()> {
        let vars = join(group, "vars");
        if self.file.has_group(&vars) {
            let mut idx: Vec<usize> = self
                .file
                .group(&vars)?
                .member_names()?
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect();
            idx.sort_unstable();
            for i in idx {
                out.push(Var {
                    local: format!("{prefix}{i}"),
                    path: format!("{vars}/{i}"),
                });
            }
        }
        for child in self.file.group(group)?.member_names()? {
            let p = join(group, &child);
            if child != "vars" && self.file.has_group(&p) {
                self.walk_v3(&p, &format!("{prefix}{child}/"), out)?;
            }
        }
        Ok(())
    }
}

fn join(group: &str, name: &str) -> String {
    if group.ends_with('/') {
        format!("{group}{name}")
    } else {
        format!("{group}/{name}")
    }
}

/// `conv/kernel:0` → `kernel`; `bi/forward_gru/gru_cell/kernel` → `forward_gru/gru_cell/kernel`.
fn local_name(weight: &str, layer: &str) -> String {
    let w = weight.strip_suffix(":0").unwrap_or(weight);
    let parts: Vec<&str> = w.split('/').collect();
    match parts[..parts.len() - 1].iter().position(|p| *p == layer) {
        Some(i) => parts[i + 1..].join("/"),
        None => w.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::local_name;

    #[test]
    fn local_names_drop_the_layer_prefix() {
        assert_eq!(local_name("conv/kernel:0", "conv"), "kernel");
        assert_eq!(local_name("sub/d1/kernel", "d1"), "kernel");
        assert_eq!(
            local_name("bi/forward_gru/gru_cell/bias", "bi"),
            "forward_gru/gru_cell/bias"
        );
        assert_eq!(local_name("kernel:0", "x"), "kernel");
    }
}
