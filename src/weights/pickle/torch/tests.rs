//! PyTorch state dict pickles: the fixtures written by
//! `tests/fixtures/pickle/make_torch_pickle.py` (what `torch.save` writes, and a gadget) and
//! hand-assembled pickles with bad contents.

use std::path::Path;

use super::{load_state_dict, TorchTensorRef};
use crate::ir::DType;
use crate::weights::pickle::opcodes::op;
use crate::weights::pickle::testing::P;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pickle")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn load_err(pkl: &[u8]) -> String {
    match load_state_dict(pkl) {
        Ok(t) => panic!("described {} tensors but should fail", t.len()),
        Err(e) => format!("{e:#}"),
    }
}

fn tensor(
    dtype: DType,
    shape: &[usize],
    stride: &[usize],
    storage_offset: usize,
    key: &str,
    storage_numel: usize,
) -> TorchTensorRef {
    TorchTensorRef {
        dtype,
        shape: shape.to_vec(),
        stride: stride.to_vec(),
        storage_offset,
        entry: format!("data/{key}"),
        storage_numel,
    }
}

/// `(name, tensor)` pushed as `torch.save` does: `_rebuild_tensor_v2` over a persistent id.
struct Tensor<'t> {
    class: &'t str,
    key: &'t str,
    numel: u64,
    offset: u64,
    shape: &'t [u64],
    stride: &'t [u64],
    /// Whether to append a metadata dict, as torch >= 2 does when a tensor has any.
    metadata: bool,
}

impl P {
    fn tuple_of(self, items: &[u64]) -> Self {
        items
            .iter()
            .fold(self.op(op::MARK), |p, &n| p.long(n))
            .op(op::TUPLE)
    }

    fn ordered_dict(self) -> Self {
        self.global("collections", "OrderedDict")
            .op(op::EMPTY_TUPLE)
            .op(op::REDUCE)
    }

    fn tensor(self, t: &Tensor<'_>) -> Self {
        let p = self
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(op::MARK)
            .op(op::MARK)
            .text("storage")
            .global("torch", t.class)
            .text(t.key)
            .text("cpu")
            .long(t.numel)
            .op(op::TUPLE)
            .op(op::BINPERSID)
            .long(t.offset)
            .tuple_of(t.shape)
            .tuple_of(t.stride)
            .op(op::NEWFALSE)
            .ordered_dict();
        let p = if t.metadata { p.op(op::EMPTY_DICT) } else { p };
        p.op(op::TUPLE).op(op::REDUCE)
    }
}

/// `OrderedDict` of the entries `body` pushes (key, value, key, value, ...).
fn state_dict(body: impl FnOnce(P) -> P) -> Vec<u8> {
    body(P::new(2).ordered_dict().op(op::MARK))
        .op(op::SETITEMS)
        .op(op::STOP)
        .finish()
}

const FLOAT_2X3: Tensor<'static> = Tensor {
    class: "FloatStorage",
    key: "0",
    numel: 6,
    offset: 0,
    shape: &[2, 3],
    stride: &[3, 1],
    metadata: false,
};

#[test]
fn describes_what_torch_save_writes() {
    let got = load_state_dict(&fixture("state_dict.pkl")).unwrap();
    let vector = |key: &str| tensor(DType::F32, &[2], &[1], 0, key, 2);
    let want = [
        ("fc.weight", tensor(DType::F32, &[2, 3], &[3, 1], 0, "0", 6)),
        ("fc.bias", vector("1")),
        ("bn.weight", vector("2")),
        ("bn.bias", vector("3")),
        ("bn.running_mean", vector("4")),
        ("bn.running_var", vector("5")),
        (
            "bn.num_batches_tracked",
            tensor(DType::I64, &[], &[], 0, "6", 1),
        ),
        // Tied to fc.weight and transposed: the same storage entry, strides swapped.
        (
            "head.weight",
            tensor(DType::F32, &[3, 2], &[1, 3], 0, "0", 6),
        ),
        (
            "emb.weight",
            tensor(DType::F16, &[2, 3], &[3, 1], 2, "7", 8),
        ),
        ("mask", tensor(DType::Bool, &[4], &[1], 0, "8", 4)),
        ("scale", tensor(DType::BF16, &[2], &[1], 0, "9", 2)),
    ];
    let want: Vec<(String, TorchTensorRef)> =
        want.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    assert_eq!(got, want);
}

#[test]
fn refuses_the_os_system_gadget_without_running_it() {
    let marker = Path::new("/tmp/mmdnn_torch_pickle_gadget_marker");
    let _ = std::fs::remove_file(marker);
    let err = load_err(&fixture("os_system.pkl"));
    assert!(err.contains("refusing to load"), "{err}");
    assert!(err.contains("'posix.system'"), "{err}");
    assert!(err.contains("mmdnn never executes pickled code"), "{err}");
    assert!(!marker.exists(), "the gadget ran");
}

#[test]
fn refuses_globals_off_the_list() {
    for (module, name) in [
        ("torch.storage", "_load_from_bytes"),
        ("os", "system"),
        ("builtins", "eval"),
        ("torch", "load"),
        ("torch", "QInt8Storage"),
        ("torch._utils", "_rebuild_parameter"),
        // NumPy's stand-ins belong to MMdnn's files, not to PyTorch's.
        ("numpy.core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),
    ] {
        let pkl = state_dict(|p| {
            p.text("w")
                .global(module, name)
                .op(op::EMPTY_TUPLE)
                .op(op::REDUCE)
        });
        let err = load_err(&pkl);
        assert!(err.contains("refusing to load"), "{err}");
        assert!(err.contains(&format!("'{module}.{name}'")), "{err}");
    }
    // PERSID (a text persistent id) is not what torch.save writes.
    let err = load_err(&P::new(2).op(b'P').raw(b"0\n").op(op::STOP).finish());
    assert!(
        err.contains("refusing to load") && err.contains("PERSID"),
        "{err}"
    );
}

#[test]
fn reads_version_1_rebuilds_and_metadata() {
    let v1 = state_dict(|p| {
        p.text("w")
            .global("torch._utils", "_rebuild_tensor")
            .op(op::MARK)
            .op(op::MARK)
            .text("storage")
            .global("torch", "IntStorage")
            .text("k_1")
            .text("cuda:0")
            .long(3)
            .op(op::TUPLE)
            .op(op::BINPERSID)
            .long(1)
            .tuple_of(&[2])
            .tuple_of(&[1])
            .op(op::TUPLE)
            .op(op::REDUCE)
    });
    let got = load_state_dict(&v1).unwrap();
    assert_eq!(
        got,
        [("w".into(), tensor(DType::I32, &[2], &[1], 1, "k_1", 3))]
    );

    let with_metadata = state_dict(|p| {
        p.text("w").tensor(&Tensor {
            metadata: true,
            ..FLOAT_2X3
        })
    });
    let got = load_state_dict(&with_metadata).unwrap();
    assert_eq!(got[0].1, tensor(DType::F32, &[2, 3], &[3, 1], 0, "0", 6));
}

#[test]
fn rejects_tensors_that_do_not_fit() {
    let past_end = state_dict(|p| {
        p.text("w").tensor(&Tensor {
            offset: 1,
            ..FLOAT_2X3
        })
    });
    let err = load_err(&past_end);
    assert!(
        err.contains("cannot decode") && err.contains("reaches past"),
        "{err}"
    );

    let huge_stride = state_dict(|p| {
        p.text("w").tensor(&Tensor {
            stride: &[1 << 62, 1 << 62],
            ..FLOAT_2X3
        })
    });
    assert!(load_err(&huge_stride).contains("reaches past"));

    // An empty tensor may sit at the very end of its storage.
    let empty = state_dict(|p| {
        p.text("w").tensor(&Tensor {
            offset: 6,
            shape: &[0, 3],
            ..FLOAT_2X3
        })
    });
    assert_eq!(load_state_dict(&empty).unwrap()[0].1.shape, [0, 3]);

    let strides = state_dict(|p| {
        p.text("w").tensor(&Tensor {
            stride: &[1],
            ..FLOAT_2X3
        })
    });
    assert!(load_err(&strides).contains("has strides [1]"));

    let two_types = state_dict(|p| {
        p.text("a").tensor(&FLOAT_2X3).text("b").tensor(&Tensor {
            class: "HalfStorage",
            ..FLOAT_2X3
        })
    });
    assert!(load_err(&two_types).contains("two different types"));
}

#[test]
fn rejects_malformed_storages_and_dicts() {
    let path_key = state_dict(|p| {
        p.text("w").tensor(&Tensor {
            key: "../x",
            ..FLOAT_2X3
        })
    });
    assert!(load_err(&path_key).contains("not a plain name"));

    let not_storage = P::new(2)
        .op(op::MARK)
        .text("storage")
        .global("collections", "OrderedDict")
        .text("0")
        .text("cpu")
        .int(1)
        .op(op::TUPLE)
        .op(op::BINPERSID)
        .op(op::STOP)
        .finish();
    assert!(load_err(&not_storage).contains("not a storage class"));

    let wrong_tag = P::new(2)
        .text("module")
        .op(op::TUPLE1)
        .op(op::BINPERSID)
        .op(op::STOP)
        .finish();
    assert!(load_err(&wrong_tag).contains("unsupported persistent id"));

    let storage_call = state_dict(|p| {
        p.text("w")
            .global("torch", "FloatStorage")
            .op(op::EMPTY_TUPLE)
            .op(op::REDUCE)
    });
    let err = load_err(&storage_call);
    assert!(
        err.contains("calling torch.FloatStorage is not supported"),
        "{err}"
    );

    let int_value = state_dict(|p| p.text("epoch").int(3));
    let err = load_err(&int_value);
    assert!(err.contains("'epoch' holds an int, not a tensor"), "{err}");

    let list_root = P::new(2).op(op::EMPTY_LIST).op(op::STOP).finish();
    assert!(load_err(&list_root).contains("holds a list, not a state dict"));

    let bad_attributes = P::new(2)
        .ordered_dict()
        .op(op::EMPTY_LIST)
        .op(op::BUILD)
        .op(op::STOP)
        .finish();
    assert!(load_err(&bad_attributes).contains("not a dict of attributes"));
}
