//! NumPy reconstruction: the stand-ins for `numpy.core.multiarray._reconstruct`,
//! `numpy.ndarray`, `numpy.dtype` (with its BUILD state), `ndarray.__setstate__` and protocol
//! 5's `numpy.core.numeric._frombuffer`, producing numeric arrays checked against their shape
//! (and the 0-d object array `np.save` wraps a pickled object in).

use super::globals::Global;
use super::value::{as_flag, shape_of, Buf, ObjId, Object, Value};
use super::vm::{unexpected_args, Machine};
use super::{malformed, quoted_bytes, Res};

/// One decoded NumPy array: dtype descr (normalized to little-endian form like `"<f4"`,
/// `"|u1"`, `"|b1"`), shape, and C-order little-endian bytes (Fortran-order and big-endian
/// arrays are converted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumpyTensor {
    /// NumPy type string: `'<'` + kind + itemsize for multi-byte types (`"<f2"`, `"<f4"`,
    /// `"<f8"`, `"<i2"`...`"<u8"`), `'|'` for one-byte types (`"|i1"`, `"|u1"`, `"|b1"`).
    pub descr: String,
    /// Array shape; empty for a 0-d array.
    pub shape: Vec<usize>,
    /// Element bytes in C (row-major) order, little-endian.
    pub data: Vec<u8>,
}

/// Element type of a numeric array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Elem {
    /// NumPy kind character: `f`, `i`, `u` or `b`.
    kind: char,
    size: usize,
    big_endian: bool,
}

impl Elem {
    fn descr(self) -> String {
        let order = if self.size == 1 { '|' } else { '<' };
        format!("{order}{}{}", self.kind, self.size)
    }
}

/// What `numpy.dtype(name, ...)` was asked to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DtypeKind {
    Numeric { kind: char, size: usize },
    Object,
}

impl DtypeKind {
    fn from_name(name: &[u8]) -> Res<Self> {
        let numeric = |kind, size| Ok(DtypeKind::Numeric { kind, size });
        match name {
            b"f2" => numeric('f', 2),
            b"f4" => numeric('f', 4),
            b"f8" => numeric('f', 8),
            b"i1" => numeric('i', 1),
            b"i2" => numeric('i', 2),
            b"i4" => numeric('i', 4),
            b"i8" => numeric('i', 8),
            b"u1" => numeric('u', 1),
            b"u2" => numeric('u', 2),
            b"u4" => numeric('u', 4),
            b"u8" => numeric('u', 8),
            b"b1" => numeric('b', 1),
            b"O4" | b"O8" => Ok(DtypeKind::Object),
            other => Err(malformed(format!(
                "unsupported NumPy dtype {}; only numeric arrays \
                 (f2, f4, f8, i1-i8, u1-u8, b1) can be loaded",
                quoted_bytes(other)
            ))),
        }
    }
}

/// The resolved element type of an array.
#[derive(Debug, Clone, Copy)]
enum ElemType {
    Numeric(Elem),
    Object,
}

/// A `numpy.dtype` instance: kind from the REDUCE, byte order from BUILD.
#[derive(Debug)]
pub(super) struct Dtype {
    kind: DtypeKind,
    /// `Some(big_endian)` once the state has been applied.
    big_endian: Option<bool>,
}

/// A numeric array whose bytes have been validated against its shape.
#[derive(Debug)]
pub(super) struct NumericArray<'a> {
    elem: Elem,
    /// Logical shape.
    shape: Vec<usize>,
    /// Per-axis strides (in elements) into `raw`, when `raw` is not in C order.
    strides: Option<Vec<usize>>,
    raw: Buf<'a>,
}

/// A `numpy.ndarray` as built so far.
#[derive(Debug)]
pub(super) enum Array<'a> {
    /// Created by `_reconstruct`, waiting for its BUILD state.
    Pending,
    Numeric(NumericArray<'a>),
    /// An object array: only valid as the 0-d wrapper around the weights dict.
    Object {
        shape: Vec<usize>,
        items: Value<'a>,
    },
}

impl<'a> Machine<'a> {
    /// REDUCE of one of the NumPy stand-ins.
    pub(super) fn numpy_call(&mut self, global: Global, args: &[Value<'a>]) -> Res<Value<'a>> {
        let bad_args = || unexpected_args(global);
        match global {
            Global::NumpyReconstruct => {
                // _reconstruct(numpy.ndarray, (0,), b'b')
                let ok = match args {
                    [Value::Global(Global::NumpyNdArray), Value::Tuple(shape), code] => {
                        matches!(&shape[..], [Value::Int(0)])
                            && match code {
                                Value::Bytes(b) => b.as_slice() == b"b",
                                Value::Str(s) => *s == "b",
                                _ => false,
                            }
                    }
                    _ => false,
                };
                if !ok {
                    return Err(bad_args());
                }
                Ok(self.new_object(Object::Array(Array::Pending)))
            }
            Global::NumpyDtype => {
                // dtype(name, align, copy)
                let (name, flags) = args.split_first().ok_or_else(bad_args)?;
                let name = match name {
                    Value::Str(s) => s.as_bytes(),
                    Value::Bytes(b) => b.as_slice(),
                    _ => return Err(bad_args()),
                };
                if flags.len() > 2 || !flags.iter().all(|f| as_flag(f).is_some()) {
                    return Err(bad_args());
                }
                let kind = DtypeKind::from_name(name)?;
                Ok(self.new_object(Object::Dtype(Dtype {
                    kind,
                    big_endian: None,
                })))
            }
            Global::NumpyFromBuffer => self.frombuffer(args),
            _ => Err(malformed(format!(
                "calling {} directly is not supported",
                global.name()
            ))),
        }
    }

    /// Protocol 5: `_frombuffer(buf, dtype, shape, order[, axis_order])`,
    /// i.e. `frombuffer(buf, dtype).reshape(shape, order)`, or for order
    /// `'K'` `reshape(shape).transpose(axis_order)`.
    fn frombuffer(&mut self, args: &[Value<'a>]) -> Res<Value<'a>> {
        let bad = || unexpected_args(Global::NumpyFromBuffer);
        let (buf, dtype, shape, order, axis_order) = match args {
            [b, d, s, o] => (b, d, s, o, None),
            [b, d, s, o, a] => (b, d, s, o, Some(a)),
            _ => return Err(bad()),
        };
        let Value::Bytes(raw) = buf else {
            return Err(bad());
        };
        let elem = match self.element_type(dtype)? {
            ElemType::Numeric(elem) => elem,
            ElemType::Object => return Err(malformed("object arrays are not supported")),
        };
        let shape = shape_of(shape)?;
        let order = match order {
            Value::Str(s) => s.as_bytes(),
            Value::Bytes(b) => b.as_slice(),
            _ => return Err(bad()),
        };
        let axis_order = match axis_order {
            None | Some(Value::None) => None,
            Some(value) => Some(shape_of(value)?),
        };
        let (shape, strides) = match (order, axis_order) {
            (b"C", _) => (shape, None),
            (b"F", _) => {
                let strides = fortran_strides(&shape);
                (shape, Some(strides))
            }
            (b"K", Some(axes)) => {
                let mut seen = vec![false; shape.len()];
                let is_permutation = axes.len() == shape.len()
                    && axes
                        .iter()
                        .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
                if !is_permutation {
                    return Err(malformed(
                        "_frombuffer axis order is not a permutation of the axes",
                    ));
                }
                let memory_strides = c_strides(&shape);
                let logical: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
                let strides = axes.iter().map(|&a| memory_strides[a]).collect();
                (logical, Some(strides))
            }
            _ => return Err(bad()),
        };
        let array = NumericArray::new(elem, shape, strides, raw.clone())?;
        Ok(self.new_object(Object::Array(Array::Numeric(array))))
    }

    /// The element type of a built `numpy.dtype` value.
    fn element_type(&self, value: &Value<'a>) -> Res<ElemType> {
        let Value::Obj(id) = value else {
            return Err(malformed(format!(
                "array dtype is {}, not a numpy.dtype",
                self.describe(value)
            )));
        };
        let Object::Dtype(dtype) = &self.objects[*id] else {
            return Err(malformed(format!(
                "array dtype is {}, not a numpy.dtype",
                self.describe(value)
            )));
        };
        let big_endian = dtype
            .big_endian
            .ok_or_else(|| malformed("a numpy.dtype is used before its state was set"))?;
        Ok(match dtype.kind {
            DtypeKind::Numeric { kind, size } => ElemType::Numeric(Elem {
                kind,
                size,
                big_endian: big_endian && size > 1,
            }),
            DtypeKind::Object => ElemType::Object,
        })
    }

    /// `dtype.__setstate__((3, endian, subarray, names, fields, elsize,
    /// alignment, flags[, metadata]))` for plain (non-structured) dtypes.
    pub(super) fn build_dtype(&mut self, id: ObjId, state: &[Value<'a>]) -> Res<()> {
        let bad = || malformed("unexpected numpy.dtype state; only plain dtypes are supported");
        let (endian, rest) = match state {
            [Value::Int(3 | 4), endian, rest @ ..] if rest.len() == 6 || rest.len() == 7 => {
                (endian, rest)
            }
            _ => return Err(bad()),
        };
        let endian = match endian {
            Value::Str(s) => s.as_bytes(),
            Value::Bytes(b) => b.as_slice(),
            _ => return Err(bad()),
        };
        // subarray, names and fields must be None (no structured dtypes);
        // elsize, alignment and flags are ints; metadata is None or a dict.
        let plain = matches!(
            &rest[..6],
            [
                Value::None,
                Value::None,
                Value::None,
                Value::Int(_),
                Value::Int(_),
                Value::Int(_)
            ]
        ) && match rest.get(6) {
            None | Some(Value::None) => true,
            Some(Value::Obj(m)) => matches!(self.objects[*m], Object::Dict(_)),
            Some(_) => false,
        };
        if !plain {
            return Err(bad());
        }
        let Object::Dtype(dtype) = &mut self.objects[id] else {
            return Err(bad());
        };
        if dtype.big_endian.is_some() {
            return Err(malformed("BUILD applied twice to the same numpy.dtype"));
        }
        let single_byte = match dtype.kind {
            DtypeKind::Numeric { size, .. } => size == 1,
            DtypeKind::Object => true,
        };
        dtype.big_endian = Some(match (endian, single_byte) {
            (b"<", _) => false,
            (b">", _) => true,
            (b"|", true) => false,
            _ => {
                return Err(malformed(format!(
                    "numpy.dtype with byte order {} is not supported",
                    quoted_bytes(endian)
                )))
            }
        });
        Ok(())
    }

    /// `ndarray.__setstate__(([1,] shape, dtype, is_fortran, data))`.
    pub(super) fn build_array(&mut self, id: ObjId, state: &[Value<'a>]) -> Res<()> {
        if !matches!(self.objects[id], Object::Array(Array::Pending)) {
            return Err(malformed("BUILD applied twice to the same array"));
        }
        let bad = "unexpected numpy.ndarray state; expected (1, shape, dtype, is_fortran, data)";
        let fields = match state {
            [Value::Int(1), rest @ ..] if rest.len() == 4 => rest,
            _ if state.len() == 4 => state,
            _ => return Err(malformed(bad)),
        };
        let shape = shape_of(&fields[0])?;
        let elem = self.element_type(&fields[1])?;
        let fortran = as_flag(&fields[2])
            .ok_or_else(|| malformed("numpy.ndarray state: is_fortran is not a bool"))?;
        let array = match elem {
            ElemType::Object => match &fields[3] {
                items @ Value::Obj(list) if matches!(self.objects[*list], Object::List(_)) => {
                    Array::Object {
                        shape,
                        items: items.clone(),
                    }
                }
                other => {
                    return Err(malformed(format!(
                        "object array data is {}, not a list",
                        self.describe(other)
                    )))
                }
            },
            ElemType::Numeric(elem) => {
                let Value::Bytes(raw) = &fields[3] else {
                    return Err(malformed(format!(
                        "array data is {}, not bytes",
                        self.describe(&fields[3])
                    )));
                };
                let strides = (fortran && shape.len() > 1).then(|| fortran_strides(&shape));
                Array::Numeric(NumericArray::new(elem, shape, strides, raw.clone())?)
            }
        };
        self.objects[id] = Object::Array(array);
        Ok(())
    }
}

/// C-order strides (in elements). Saturating: only used for non-empty
/// arrays, whose suffix products are bounded by the element count.
fn c_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1].saturating_mul(shape[axis + 1]);
    }
    strides
}

/// Fortran-order strides (in elements).
fn fortran_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for axis in 1..shape.len() {
        strides[axis] = strides[axis - 1].saturating_mul(shape[axis - 1]);
    }
    strides
}

impl<'a> NumericArray<'a> {
    /// Checks that `raw` holds exactly `product(shape)` elements.
    fn new(elem: Elem, shape: Vec<usize>, strides: Option<Vec<usize>>, raw: Buf<'a>) -> Res<Self> {
        let needed = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|count| count.checked_mul(elem.size));
        let have = raw.as_slice().len();
        match needed {
            Some(needed) if needed == have => Ok(NumericArray {
                elem,
                shape,
                strides,
                raw,
            }),
            Some(needed) => Err(malformed(format!(
                "array of shape {shape:?} and dtype {} needs {needed} bytes but the pickle \
                 holds {have}",
                elem.descr()
            ))),
            None => Err(malformed(format!(
                "array shape {shape:?} declares an absurd number of elements"
            ))),
        }
    }

    /// Size of the array's data in bytes.
    pub(super) fn byte_len(&self) -> usize {
        self.raw.as_slice().len()
    }

    /// Copies the data out in C order and little-endian byte order.
    pub(super) fn to_tensor(&self) -> NumpyTensor {
        let src = self.raw.as_slice();
        let size = self.elem.size;
        let mut data = match &self.strides {
            Some(strides) if !src.is_empty() => gather(src, size, &self.shape, strides),
            _ => src.to_vec(),
        };
        if self.elem.big_endian {
            for item in data.chunks_exact_mut(size) {
                item.reverse();
            }
        }
        NumpyTensor {
            descr: self.elem.descr(),
            shape: self.shape.clone(),
            data,
        }
    }
}

/// Reads elements of `size` bytes from `src` at `strides` (in elements) per
/// axis of `shape`, writing them out in C order. `src` must be non-empty and
/// `strides` a permutation of the C strides of some shape with the same
/// element count, so every offset stays in bounds.
fn gather(src: &[u8], size: usize, shape: &[usize], strides: &[usize]) -> Vec<u8> {
    let count = src.len() / size;
    let mut out = Vec::with_capacity(src.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..count {
        out.extend_from_slice(&src[offset * size..(offset + 1) * size]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Arrays in hand-assembled MMdnn files: byte orders, layouts, calls and sizes.

    use crate::weights::pickle::mmdnn::decode_legacy_weights;
    use crate::weights::pickle::opcodes::op;
    use crate::weights::pickle::testing::{decode_err, f32s, one_param, values};

    #[test]
    fn big_endian_f4_is_converted() {
        let raw: Vec<u8> = [1.5f32, -2.0, 3.25, 1e-3]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let bytes = one_param("l", "w", |p| p.array("f4", ">", &[2, 2], false, &raw));
        let t = decode_legacy_weights(&bytes, "test.npy").unwrap();
        assert_eq!(t[0].2.descr, "<f4");
        assert_eq!(t[0].2.shape, [2, 2]);
        assert_eq!(f32s(&t[0].2), [1.5, -2.0, 3.25, 1e-3]);
    }

    #[test]
    fn big_endian_fortran_i2_is_converted() {
        // Logical [[0, 1, 2], [3, 4, 5]] stored column-major, big-endian.
        let raw: Vec<u8> = [0i16, 3, 1, 4, 2, 5]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let bytes = one_param("l", "w", |p| p.array("i2", ">", &[2, 3], true, &raw));
        let t = decode_legacy_weights(&bytes, "test.npy").unwrap();
        assert_eq!(
            values(&t[0].2, "<i2", i16::from_le_bytes),
            [0, 1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn rejects_wrong_call_shapes() {
        let ndarray_call = one_param("l", "w", |p| {
            p.global("numpy", "ndarray")
                .op(op::EMPTY_TUPLE)
                .op(op::REDUCE)
        });
        assert!(decode_err(&ndarray_call).contains("numpy.ndarray"));

        let utf8 = one_param("l", "w", |p| {
            p.global("_codecs", "encode")
                .text("x")
                .text("utf-8")
                .op(op::TUPLE2)
                .op(op::REDUCE)
        });
        assert!(decode_err(&utf8).contains("'utf-8'"));

        let reconstruct_list = one_param("l", "w", |p| {
            p.global("numpy._core.multiarray", "_reconstruct")
                .global("numpy", "dtype")
                .op(op::EMPTY_TUPLE)
                .op(op::TUPLE2)
                .op(op::REDUCE)
        });
        assert!(decode_err(&reconstruct_list).contains("unexpected arguments"));

        let object_dtype = one_param("l", "w", |p| p.dtype("U5", "<"));
        assert!(decode_err(&object_dtype).contains("'U5'"));
    }

    #[test]
    fn rejects_size_mismatch_and_absurd_shapes() {
        let short = one_param("l", "w", |p| p.array("f4", "<", &[2, 3], false, &[0; 20]));
        let err = decode_err(&short);
        assert!(
            err.contains("needs 24 bytes") && err.contains("holds 20"),
            "{err}"
        );

        // 2^40 * 2^40 elements overflow usize: refused without allocating.
        let huge = one_param("l", "w", |p| {
            p.array("f4", "<", &[1 << 40, 1 << 40], false, &[])
        });
        let err = decode_err(&huge);
        assert!(err.contains("absurd"), "{err}");

        // An empty array may have huge other dimensions.
        let empty = one_param("l", "w", |p| {
            p.array("f8", "<", &[0, 1 << 40, 1 << 40], true, &[])
        });
        let t = decode_legacy_weights(&empty, "test.npy").unwrap();
        assert_eq!(t[0].2.shape, [0, 1 << 40, 1 << 40]);
        assert!(t[0].2.data.is_empty());
    }

    #[test]
    fn frombuffer_checks_axis_order() {
        let bad_axes = one_param("l", "w", |p| {
            p.global("numpy._core.numeric", "_frombuffer")
                .op(op::MARK)
                .op(op::BYTEARRAY8)
                .raw(&8u64.to_le_bytes())
                .raw(&[0; 8])
                .dtype("i2", "<")
                .int(2)
                .int(2)
                .op(op::TUPLE2)
                .text("K")
                .int(0)
                .int(0)
                .op(op::TUPLE2)
                .op(op::TUPLE)
                .op(op::REDUCE)
        });
        assert!(decode_err(&bad_axes).contains("permutation"));
    }
}
