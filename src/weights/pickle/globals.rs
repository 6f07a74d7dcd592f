//! The allow-list: every global a pickle may name, and what each user of the machine accepts.
//! Nothing here is ever executed; each global maps to a stand-in that builds an inert value.

use super::{refused, Res};
use crate::ir::DType;

/// A global the machine knows how to stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Global {
    /// `numpy.core.multiarray._reconstruct` (also `numpy._core.multiarray`).
    NumpyReconstruct,
    /// `numpy.ndarray`, only as `_reconstruct`'s first argument.
    NumpyNdArray,
    /// `numpy.dtype`.
    NumpyDtype,
    /// `numpy.core.numeric._frombuffer` (also `numpy._core.numeric`).
    NumpyFromBuffer,
    /// `_codecs.encode`, which protocol 2 uses for bytes written by Python 3.
    CodecsEncode,
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    TorchRebuildTensorV2,
    /// `torch._utils._rebuild_tensor`, the version 1 of it.
    TorchRebuildTensor,
    /// A typed storage class such as `torch.FloatStorage`, named by its element type.
    TorchStorage(DType),
}

/// Groups of globals; a user of the machine accepts some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    NumPy,
    Codecs,
    OrderedDict,
    Torch,
}

/// The storage classes `torch.save` names in persistent ids, by element type. Complex and
/// quantized storages are not on the list.
const TORCH_STORAGES: [(&str, DType); 10] = [
    ("torch.FloatStorage", DType::F32),
    ("torch.DoubleStorage", DType::F64),
    ("torch.HalfStorage", DType::F16),
    ("torch.BFloat16Storage", DType::BF16),
    ("torch.LongStorage", DType::I64),
    ("torch.IntStorage", DType::I32),
    ("torch.ShortStorage", DType::I16),
    ("torch.CharStorage", DType::I8),
    ("torch.ByteStorage", DType::U8),
    ("torch.BoolStorage", DType::Bool),
];

impl Global {
    /// The stand-in for `module.name`, if it is on the list at all.
    fn lookup(module: &str, name: &str) -> Option<Self> {
        Some(match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Global::NumpyReconstruct
            }
            ("numpy", "ndarray") => Global::NumpyNdArray,
            ("numpy", "dtype") => Global::NumpyDtype,
            ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => {
                Global::NumpyFromBuffer
            }
            ("_codecs", "encode") => Global::CodecsEncode,
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::TorchRebuildTensorV2,
            ("torch._utils", "_rebuild_tensor") => Global::TorchRebuildTensor,
            ("torch", class) => TORCH_STORAGES
                .iter()
                .find(|(full, _)| full.strip_prefix("torch.") == Some(class))
                .map(|&(_, dtype)| Global::TorchStorage(dtype))?,
            _ => return None,
        })
    }

    fn family(self) -> Family {
        match self {
            Global::NumpyReconstruct
            | Global::NumpyNdArray
            | Global::NumpyDtype
            | Global::NumpyFromBuffer => Family::NumPy,
            Global::CodecsEncode => Family::Codecs,
            Global::OrderedDict => Family::OrderedDict,
            Global::TorchRebuildTensorV2 | Global::TorchRebuildTensor | Global::TorchStorage(_) => {
                Family::Torch
            }
        }
    }

    /// The global's Python name, for error messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Global::NumpyReconstruct => "numpy.core.multiarray._reconstruct",
            Global::NumpyNdArray => "numpy.ndarray",
            Global::NumpyDtype => "numpy.dtype",
            Global::NumpyFromBuffer => "numpy.core.numeric._frombuffer",
            Global::CodecsEncode => "_codecs.encode",
            Global::OrderedDict => "collections.OrderedDict",
            Global::TorchRebuildTensorV2 => "torch._utils._rebuild_tensor_v2",
            Global::TorchRebuildTensor => "torch._utils._rebuild_tensor",
            Global::TorchStorage(dtype) => TORCH_STORAGES
                .iter()
                .find(|&&(_, d)| d == dtype)
                .map_or("torch storage", |&(full, _)| full),
        }
    }
}

/// What one user of the machine accepts, and how its refusals read.
pub(super) struct Policy {
    /// The families of globals a pickle may name.
    pub families: &'static [Family],
    /// What the accepted globals build, for the refusal of others ("a NumPy array or dict").
    pub builds: &'static str,
    /// The decoder's name in the refusal of an opcode ("legacy weights").
    pub decoder: &'static str,
    /// The kind of file, in the refusal of an endless pickle ("MMdnn weights file").
    pub file_kind: &'static str,
    /// Whether `BINPERSID` (PyTorch's storages) is accepted.
    pub persistent_ids: bool,
    /// Whether BUILD may set a dict's attributes (a state dict's `_metadata`, ignored).
    pub dict_attributes: bool,
}

impl Policy {
    /// The stand-in for `module.name`, or a refusal naming it.
    pub(super) fn resolve(&self, module: &str, name: &str) -> Res<Global> {
        match Global::lookup(module, name) {
            Some(global) if self.families.contains(&global.family()) => Ok(global),
            _ => Err(refused(format!(
                "the pickle references '{}.{}', which is not {}; mmdnn never executes pickled \
                 code",
                module.escape_debug(),
                name.escape_debug(),
                self.builds
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Globals off the allow-list are refused, naming them.

    use crate::weights::pickle::opcodes::op;
    use crate::weights::pickle::testing::{decode_err, P};

    #[test]
    fn refuses_other_globals() {
        for (module, name) in [
            ("os", "system"),
            ("subprocess", "Popen"),
            ("builtins", "getattr"),
            ("__builtin__", "eval"),
            ("numpy", "load"),
            ("numpy.core.multiarray", "scalar"),
            ("collections", "defaultdict"),
        ] {
            let bytes = P::new(2)
                .global(module, name)
                .op(op::EMPTY_TUPLE)
                .op(op::REDUCE)
                .op(op::STOP)
                .npy();
            let err = decode_err(&bytes);
            assert!(err.contains("refusing to load"), "{err}");
            assert!(err.contains(&format!("'{module}.{name}'")), "{err}");
        }
    }
}
