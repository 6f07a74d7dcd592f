//! MMdnn `.npy` weights: the fixtures written by `tests/fixtures/make_legacy_npy.py` (one per
//! pickle dialect, plus malicious files) and hand-assembled files with bad contents.

use std::path::{Path, PathBuf};

use super::{decode_legacy_weights, read_legacy_weights};
use crate::weights::pickle::opcodes::op;
use crate::weights::pickle::testing::{
    decode_err, f32s, f64s, i64s, npy_header, one_param, values, P,
};
use crate::weights::pickle::NumpyTensor;

type Triples = Vec<(String, String, NumpyTensor)>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/legacy")
        .join(name)
}

fn load(name: &str) -> Triples {
    read_legacy_weights(&fixture(name)).unwrap_or_else(|e| panic!("decoding {name} failed: {e:#}"))
}

fn load_err(name: &str) -> String {
    match read_legacy_weights(&fixture(name)) {
        Ok(t) => panic!("{name} decoded to {} tensors but should fail", t.len()),
        Err(e) => format!("{e:#}"),
    }
}

fn names(triples: &Triples) -> Vec<(&str, &str)> {
    triples
        .iter()
        .map(|(l, p, _)| (l.as_str(), p.as_str()))
        .collect()
}

fn get<'t>(triples: &'t Triples, layer: &str, param: &str) -> &'t NumpyTensor {
    triples
        .iter()
        .find(|(l, p, _)| l == layer && p == param)
        .map(|(_, _, t)| t)
        .unwrap_or_else(|| panic!("no tensor {layer}/{param}"))
}

/// Decodes an IEEE half (normal numbers and zero only, enough here).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f32::from(bits & 0x3ff);
    if exp == 0 && frac == 0.0 {
        return 0.0;
    }
    sign * (1.0 + frac / 1024.0) * 2f32.powi(exp - 15)
}

// -- fixtures written by tests/fixtures/make_legacy_npy.py -------------

#[test]
fn protocol_2_from_python3() {
    let t = load("mmdnn_dict_p2.npy");
    assert_eq!(
        names(&t),
        [("conv1", "weights"), ("conv1", "bias"), ("fc1", "weights")]
    );
    let w = get(&t, "conv1", "weights");
    assert_eq!(w.shape, [2, 3, 4]);
    let want: Vec<f32> = (0..24).map(|i| (i as f32 - 12.0) * 0.25).collect();
    assert_eq!(f32s(w), want);
    let b = get(&t, "conv1", "bias");
    assert_eq!(b.shape, [4]);
    assert_eq!(i64s(b), [0, -3, -6, -9]);
    let fc = get(&t, "fc1", "weights");
    assert_eq!(fc.shape, [3, 2]);
    assert_eq!(f32s(fc), (0..6).map(|i| i as f32).collect::<Vec<_>>());
}

#[test]
fn protocol_3_numpy1_with_big_endian_arrays() {
    let t = load("mmdnn_dict_p3.npy");
    assert_eq!(
        names(&t),
        [
            ("bn", "mean"),
            ("bn", "var"),
            ("bn", "count"),
            ("bn", "flags"),
            ("bn", "u16")
        ]
    );
    // '>f4' on disk, '<f4' out.
    let mean = get(&t, "bn", "mean");
    assert_eq!(mean.shape, [5]);
    assert_eq!(
        f32s(mean),
        (0..5).map(|i| i as f32 * 1.5).collect::<Vec<_>>()
    );
    let var = get(&t, "bn", "var");
    assert_eq!(
        f64s(var),
        (0..5).map(|i| i as f64 + 0.5).collect::<Vec<_>>()
    );
    let count = get(&t, "bn", "count");
    assert_eq!(values(count, "<i4", i32::from_le_bytes), [-1, 0, 1]);
    let flags = get(&t, "bn", "flags");
    assert_eq!(flags.descr, "|u1");
    assert_eq!(flags.data, [1, 2, 250]);
    let u16s = get(&t, "bn", "u16");
    assert_eq!(
        values(u16s, "<u2", u16::from_le_bytes),
        [0, 1000, 2000, 3000]
    );
}

#[test]
fn protocol_4_half_fortran_bool_empty() {
    let t = load("mmdnn_dict_p4.npy");
    assert_eq!(
        names(&t),
        [
            ("half", "w"),
            ("fortran", "w"),
            ("mask", "m"),
            ("mask", "scalar"),
            ("empty", "e")
        ]
    );
    let half = get(&t, "half", "w");
    assert_eq!(half.shape, [2, 4]);
    let got: Vec<f32> = values(half, "<f2", u16::from_le_bytes)
        .into_iter()
        .map(f16_to_f32)
        .collect();
    assert_eq!(got, (0..8).map(|i| i as f32 / 4.0).collect::<Vec<_>>());
    // np.asfortranarray(np.arange(24).reshape(2, 3, 4)): C order is arange.
    let fortran = get(&t, "fortran", "w");
    assert_eq!(fortran.shape, [2, 3, 4]);
    assert_eq!(f32s(fortran), (0..24).map(|i| i as f32).collect::<Vec<_>>());
    let mask = get(&t, "mask", "m");
    assert_eq!((mask.descr.as_str(), &mask.shape[..]), ("|b1", &[2, 3][..]));
    assert_eq!(mask.data, [1, 0, 1, 1, 0, 0]);
    let scalar = get(&t, "mask", "scalar");
    assert_eq!((scalar.descr.as_str(), scalar.shape.len()), ("|b1", 0));
    assert_eq!(scalar.data, [1]);
    let empty = get(&t, "empty", "e");
    assert_eq!(
        (empty.descr.as_str(), &empty.shape[..]),
        ("<f4", &[0, 3][..])
    );
    assert!(empty.data.is_empty());
}

#[test]
fn protocol_5_frombuffer_orders() {
    let t = load("mmdnn_dict_p5.npy");
    assert_eq!(
        names(&t),
        [("c", "w"), ("f", "w"), ("k", "w"), ("s", "w"), ("b", "w")]
    );
    let c = get(&t, "c", "w");
    assert_eq!(c.shape, [2, 3]);
    assert_eq!(f32s(c), (0..6).map(|i| i as f32).collect::<Vec<_>>());
    let f = get(&t, "f", "w");
    assert_eq!(f.shape, [3, 4]);
    assert_eq!(f64s(f), (0..12).map(f64::from).collect::<Vec<_>>());
    // arange(24, '>i2').reshape(2, 3, 4).transpose(1, 2, 0):
    // out[a, b, c] = in[c, a, b] = 12c + 4a + b.
    let k = get(&t, "k", "w");
    assert_eq!(k.shape, [3, 4, 2]);
    let mut want = Vec::new();
    for a in 0..3i16 {
        for b in 0..4 {
            for c in 0..2 {
                want.push(12 * c + 4 * a + b);
            }
        }
    }
    assert_eq!(values(k, "<i2", i16::from_le_bytes), want);
    let s = get(&t, "s", "w");
    assert_eq!(f32s(s), [0.0, 3.0, 6.0, 9.0]);
    let b = get(&t, "b", "w");
    assert_eq!(
        (b.descr.as_str(), b.shape.len(), &b.data[..]),
        ("|b1", 0, &[1u8][..])
    );
}

#[test]
fn python2_style_pickle() {
    let t = load("mmdnn_dict_py2.npy");
    // bytes keys decode as UTF-8, else Latin-1 (b'caf\xe9' -> "café").
    assert_eq!(
        names(&t),
        [
            ("conv", "weights"),
            ("conv", "bias"),
            ("caf\u{e9}", "gamma")
        ]
    );
    let w = get(&t, "conv", "weights");
    assert_eq!(w.shape, [100]);
    assert_eq!(
        f32s(w),
        (0..100).map(|i| i as f32 * 0.5).collect::<Vec<_>>()
    );
    let b = get(&t, "conv", "bias");
    assert_eq!(f32s(b), [0.0, 1.0, 2.0]);
    let g = get(&t, "caf\u{e9}", "gamma");
    assert_eq!(i64s(g), [-5, -4]);
}

#[test]
fn refuses_os_system_without_running_it() {
    let marker = Path::new("/tmp/mmdnn_legacy_npy_evil_system_marker");
    let _ = std::fs::remove_file(marker);
    let err = load_err("evil_system.npy");
    assert!(
        err.contains("refusing to load legacy MMdnn weights"),
        "{err}"
    );
    assert!(err.contains("evil_system.npy"), "{err}");
    assert!(err.contains("'posix.system'"), "{err}");
    assert!(err.contains("mmdnn never executes pickled code"), "{err}");
    assert!(!marker.exists(), "the malicious pickle ran");
}

#[test]
fn refuses_builtins_eval_via_stack_global() {
    let marker = Path::new("/tmp/mmdnn_legacy_npy_evil_eval_marker");
    let _ = std::fs::remove_file(marker);
    let err = load_err("evil_eval.npy");
    assert!(err.contains("refusing to load"), "{err}");
    assert!(err.contains("'builtins.eval'"), "{err}");
    assert!(!marker.exists(), "the malicious pickle ran");
}

#[test]
fn plain_array_is_not_a_weights_dict() {
    let err = load_err("plain_array.npy");
    assert!(err.contains("plain NumPy array"), "{err}");
    assert!(err.contains("'<f4'") && err.contains("(2, 3)"), "{err}");
    assert!(err.contains("not an MMdnn weights dict"), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let err = read_legacy_weights(&fixture("does_not_exist.npy")).unwrap_err();
    assert!(format!("{err:#}").contains("does_not_exist.npy"));
}

// -- hand-assembled files ----------------------------------------------

#[test]
fn rejects_values_that_are_not_arrays() {
    let err = decode_err(&one_param("conv", "w", |p| p.int(5)));
    assert!(err.contains("'conv/w'") && err.contains("an int"), "{err}");

    let not_dict = P::new(2)
        .op(op::EMPTY_DICT)
        .text("conv")
        .op(op::EMPTY_LIST)
        .op(op::SETITEM)
        .op(op::STOP)
        .npy();
    let err = decode_err(&not_dict);
    assert!(err.contains("'conv'") && err.contains("a list"), "{err}");

    let object_array = one_param("conv", "w", |p| {
        p.global("numpy.core.multiarray", "_reconstruct")
            .global("numpy", "ndarray")
            .int(0)
            .op(op::TUPLE1)
            .text("b")
            .op(op::TUPLE3)
            .op(op::REDUCE)
            .op(op::MARK)
            .int(1)
            .op(op::EMPTY_TUPLE)
            .dtype("O8", "|")
            .op(op::NEWFALSE)
            .op(op::EMPTY_LIST)
            .op(op::NONE)
            .op(op::APPEND)
            .op(op::TUPLE)
            .op(op::BUILD)
    });
    let err = decode_err(&object_array);
    assert!(
        err.contains("'conv/w'") && err.contains("object array"),
        "{err}"
    );

    let int_key = P::new(2)
        .op(op::EMPTY_DICT)
        .int(7)
        .op(op::EMPTY_DICT)
        .op(op::SETITEM)
        .op(op::STOP)
        .npy();
    assert!(decode_err(&int_key).contains("only str and bytes keys"));
}

#[test]
fn rejects_memo_amplification() {
    // One 4 KiB array referenced 200 times: 800 KiB from a ~6 KiB file.
    let mut p = P::new(2)
        .op(op::EMPTY_DICT)
        .text("l")
        .op(op::EMPTY_DICT)
        .text("p0")
        .array("u1", "|", &[4096], false, &[7; 4096])
        .put(1)
        .op(op::SETITEM);
    for i in 1..200 {
        p = p.text(&format!("p{i}")).get(1).op(op::SETITEM);
    }
    let err = decode_err(&p.op(op::SETITEM).op(op::STOP).npy());
    assert!(
        err.contains("refusing to load") && err.contains("more than the file"),
        "{err}"
    );
}

#[test]
fn shared_arrays_within_budget_are_copied() {
    // A legitimately shared (memoised) array is returned under each name.
    let bytes = P::new(2)
        .op(op::EMPTY_DICT)
        .text("a")
        .op(op::EMPTY_DICT)
        .text("w")
        .array("i1", "<", &[3], false, &[1, 2, 0xff])
        .put(0)
        .op(op::SETITEM)
        .op(op::SETITEM)
        .op(op::BINBYTES)
        .raw(&1u32.to_le_bytes())
        .raw(b"b")
        .op(op::EMPTY_DICT)
        .text("w")
        .get(0)
        .op(op::SETITEM)
        .op(op::SETITEM)
        .op(op::STOP)
        .npy();
    let t = decode_legacy_weights(&bytes, "test.npy").unwrap();
    assert_eq!(names(&t), [("a", "w"), ("b", "w")]);
    for (_, _, tensor) in &t {
        assert_eq!(
            (tensor.descr.as_str(), &tensor.data[..]),
            ("|i1", &[1, 2, 0xff][..])
        );
    }
}

#[test]
fn rejects_duplicate_names_after_decoding() {
    let bytes = P::new(2)
        .op(op::EMPTY_DICT)
        .text("a")
        .op(op::EMPTY_DICT)
        .op(op::SETITEM)
        .op(op::SHORT_BINBYTES)
        .raw(&[1, b'a'])
        .op(op::EMPTY_DICT)
        .op(op::SETITEM)
        .op(op::STOP)
        .npy();
    assert!(decode_err(&bytes).contains("appears twice"));
}

#[test]
fn rejects_malformed_containers() {
    assert!(decode_err(b"PK\x03\x04").contains("not a .npy file"));
    let mut truncated = one_param("l", "w", |p| p.array("f4", "<", &[1], false, &[0; 4]));
    truncated.truncate(truncated.len() - 3);
    let err = decode_err(&truncated);
    assert!(
        err.contains("cannot decode") && err.contains("test.npy"),
        "{err}"
    );
    let underflow = P::new(2).op(op::SETITEM).op(op::STOP).npy();
    assert!(decode_err(&underflow).contains("underflow"));
    let missing_memo = P::new(2).get(9).op(op::STOP).npy();
    assert!(decode_err(&missing_memo).contains("no entry 9"));
    let not_dict = P::new(2).op(op::NONE).op(op::STOP).npy();
    assert!(decode_err(&not_dict).contains("not a dict of layers"));
    let object_shape = npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}");
    assert!(decode_err(&object_shape).contains("object array of shape (2,)"));
    // Python 2 headers may spell dimensions as longs.
    let py2_plain = npy_header("{'descr': '<f8', 'fortran_order': True, 'shape': (3L, 4L), }");
    assert!(decode_err(&py2_plain).contains("descr '<f8', shape (3, 4)"));
    let bad_version = b"\x93NUMPY\x04\x00";
    assert!(decode_err(bad_version).contains("version 4.0"));
}

/// Tuples nested 200,000 deep (a 200 KB file) are built and dropped without recursion: the
/// file is refused for what it is, not by a stack overflow.
#[test]
fn deeply_nested_tuples_do_not_overflow_the_stack() {
    let mut p = P::new(2).op(op::EMPTY_TUPLE);
    for _ in 0..200_000 {
        p = p.op(op::TUPLE1);
    }
    let err = decode_err(&p.op(op::STOP).npy());
    assert!(err.contains("a tuple"), "{err}");
}
