//! Element conversions of derived weights: casts between element types, dequantization, and
//! filled tensors. Integers are converted exactly (through i128) and must fit their target;
//! floats round to the target precision (the narrow floats as ONNX Cast's defaults do:
//! saturating, E8M0 rounding up).
use crate::ir::{narrow, DType};
use crate::weights::mapped::release;
use crate::weights::{Tensor, TensorInfo};
use anyhow::{bail, Result};

/// A tensor's elements, exactly.
enum Values {
    Ints(Vec<i128>),
    Floats(Vec<f64>),
}

fn is_int(dtype: DType) -> bool {
    !dtype.is_float() && dtype != DType::Bool
}

/// Whether [`cast`] converts `from` to `to` (floats do not convert to integers).
pub fn castable(from: DType, to: DType) -> bool {
    from == to || !(from.is_float() && is_int(to))
}

fn values(t: &Tensor) -> Values {
    let d = &t.data;
    macro_rules! ints {
        ($t:ty) => {
            d.chunks_exact(std::mem::size_of::<$t>())
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")) as i128)
                .collect()
        };
    }
    Values::Ints(match t.info.dtype {
        DType::F64 => return Values::Floats(f64_values(d)),
        dt if dt.is_float() => {
            return Values::Floats(t.to_f32().into_iter().map(f64::from).collect())
        }
        DType::Bool => d.iter().map(|&b| (b != 0) as i128).collect(),
        DType::I8 | DType::I4 | DType::I2 => d.iter().map(|&b| b as i8 as i128).collect(),
        DType::U8 | DType::U4 | DType::U2 => d.iter().map(|&b| b as i128).collect(),
        DType::I16 => ints!(i16),
        DType::U16 => ints!(u16),
        DType::I32 => ints!(i32),
        DType::U32 => ints!(u32),
        DType::I64 => ints!(i64),
        DType::U64 => ints!(u64),
        dt => unreachable!("{dt} is a float"),
    })
}

fn f64_values(d: &[u8]) -> Vec<f64> {
    d.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
        .collect()
}

/// One float element of `to` (a float type or bool).
fn float_bytes(to: DType, v: f64, out: &mut Vec<u8>) {
    match to {
        DType::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
        DType::F64 => out.extend_from_slice(&v.to_le_bytes()),
        DType::F16 => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
        DType::BF16 => out.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
        DType::Bool => out.push((v != 0.0) as u8),
        d => out.push(narrow::encode(d, v as f32, true, narrow::RoundMode::Up)),
    }
}

/// The elements as `to`, little-endian.
fn encode(values: &Values, to: DType) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match values {
        Values::Floats(v) if is_int(to) => {
            bail!("cannot cast floats ({} values) to {to}", v.len())
        }
        Values::Floats(v) => v.iter().for_each(|&x| float_bytes(to, x, &mut out)),
        Values::Ints(v) if !is_int(to) => {
            v.iter().for_each(|&x| float_bytes(to, x as f64, &mut out))
        }
        Values::Ints(v) => {
            let (lo, hi) = to.int_range();
            for &x in v {
                if x < lo || x > hi {
                    bail!("value {x} does not fit {to}");
                }
                out.extend_from_slice(&x.to_le_bytes()[..to.size()]);
            }
        }
    }
    Ok(out)
}

/// `t` with its elements converted to `to`; a tensor already of that type is returned as it is.
pub fn cast(t: Tensor, to: DType) -> Result<Tensor> {
    if t.info.dtype == to {
        return Ok(t);
    }
    if !castable(t.info.dtype, to) {
        bail!("cannot cast {} to {to}", t.info.dtype);
    }
    let data = encode(&values(&t), to)?;
    release(&t.data);
    Tensor::new(to, t.info.shape, data)
}

/// A tensor of `dtype` and `shape` with every element `value` (which must be a whole number for
/// an integer type and fit it).
pub fn filled(dtype: DType, shape: Vec<usize>, value: f64) -> Result<Tensor> {
    let one = if is_int(dtype) {
        if value.fract() != 0.0 {
            bail!("{value} is not a whole number, as {dtype} needs");
        }
        Values::Ints(vec![value as i128])
    } else {
        Values::Floats(vec![value])
    };
    let n = shape.iter().product();
    Tensor::new(dtype, shape, encode(&one, dtype)?.repeat(n))
}

/// Checks the parameters of a dequantization of a tensor of `info`.
pub fn check_quantization(
    info: &TensorInfo,
    scale: &[f32],
    zero_point: &[i64],
    axis: usize,
) -> Result<()> {
    let per_axis = scale.len() != 1;
    if per_axis && info.shape.get(axis) != Some(&scale.len()) {
        bail!(
            "{} scales do not fit axis {axis} of {:?}",
            scale.len(),
            info.shape
        );
    }
    if !zero_point.is_empty() && zero_point.len() != scale.len() {
        bail!(
            "{} zero points for {} scales",
            zero_point.len(),
            scale.len()
        );
    }
    Ok(())
}

/// `(x - zero_point) * scale` of each element of `t` (parameters checked by
/// [`check_quantization`]): integers subtract exactly, then convert to float32.
pub fn dequantize(t: &Tensor, scale: &[f32], zero_point: &[i64], axis: usize) -> Vec<f32> {
    let inner: usize = match scale.len() {
        1 => t.info.numel().max(1),
        _ => t.info.shape[axis + 1..].iter().product(),
    };
    let at = |i: usize| (i / inner.max(1)) % scale.len();
    let zp = |k: usize| zero_point.get(k).copied().unwrap_or(0);
    match values(t) {
        Values::Ints(v) => v
            .iter()
            .enumerate()
            .map(|(i, &x)| (x - zp(at(i)) as i128) as f32 * scale[at(i)])
            .collect(),
        Values::Floats(v) => v
            .iter()
            .enumerate()
            .map(|(i, &x)| (x as f32 - zp(at(i)) as f32) * scale[at(i)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dtype: DType, bytes: Vec<u8>) -> Tensor {
        let n = bytes.len() / dtype.size();
        Tensor::new(dtype, vec![n], bytes).unwrap()
    }

    fn le<T: Copy, const N: usize>(values: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|&v| f(v)).collect()
    }

    #[test]
    fn casts_convert_each_kind_of_element() {
        // float64 → float32 rounds to nearest.
        let x = tensor(DType::F64, le(&[0.1f64, -2.5, 1e300], f64::to_le_bytes));
        let y = cast(x, DType::F32).unwrap();
        assert_eq!(y.info.dtype, DType::F32);
        assert_eq!(y.to_f32(), vec![0.1f32, -2.5, f32::INFINITY]);
        // int64 → int32 exactly, and refused when a value does not fit.
        let x = tensor(DType::I64, le(&[-7i64, i32::MAX as i64], i64::to_le_bytes));
        let y = cast(x, DType::I32).unwrap();
        assert_eq!(&y.data[..], &le(&[-7i32, i32::MAX], i32::to_le_bytes)[..]);
        let big = tensor(DType::I64, le(&[1i64 << 40], i64::to_le_bytes));
        let err = cast(big, DType::I32).unwrap_err().to_string();
        assert!(err.contains("does not fit int32"), "{err}");
        // int32 → int64 sign-extends; uint64 beyond i64 survives to uint64.
        let x = tensor(DType::I32, le(&[-1i32, 5], i32::to_le_bytes));
        let y = cast(x, DType::I64).unwrap();
        assert_eq!(&y.data[..], &le(&[-1i64, 5], i64::to_le_bytes)[..]);
        let x = tensor(DType::U64, le(&[u64::MAX], u64::to_le_bytes));
        assert!(cast(x.clone(), DType::I64).is_err());
        assert_eq!(cast(x, DType::F64).unwrap().to_f32(), vec![u64::MAX as f32]);
        // int → float, float → bool, int → int4, float → float8 (saturating).
        let x = tensor(DType::I8, vec![0xff, 3]);
        assert_eq!(
            cast(x.clone(), DType::F16).unwrap().to_f32(),
            vec![-1.0, 3.0]
        );
        assert_eq!(&cast(x, DType::I4).unwrap().data[..], &[0xff, 3]);
        let x = tensor(DType::F32, le(&[0.0f32, -0.5, 1e9], f32::to_le_bytes));
        assert_eq!(&cast(x.clone(), DType::Bool).unwrap().data[..], &[0, 1, 1]);
        let e4m3 = cast(x.clone(), DType::F8E4M3FN).unwrap();
        assert_eq!(e4m3.to_f32(), vec![0.0, -0.5, 448.0]);
        // Floats do not become integers; the same type is returned as it is.
        assert!(!castable(DType::F32, DType::I32));
        assert!(cast(x.clone(), DType::I32).is_err());
        assert_eq!(cast(x.clone(), DType::F32).unwrap().data, x.data);
    }

    #[test]
    fn filled_tensors_hold_one_value() {
        let t = filled(DType::F16, vec![2, 2], 1.5).unwrap();
        assert_eq!(t.to_f32(), vec![1.5; 4]);
        let t = filled(DType::I64, vec![3], 0.0).unwrap();
        assert_eq!(&t.data[..], &[0u8; 24][..]);
        let t = filled(DType::U8, vec![], 7.0).unwrap();
        assert_eq!(&t.data[..], &[7]);
        assert!(filled(DType::I32, vec![1], 0.5).is_err());
        assert!(filled(DType::U8, vec![1], 256.0).is_err());
    }

    #[test]
    fn dequantizes_per_tensor_and_per_axis() {
        // Per tensor: (x - 3) * 0.5.
        let info = TensorInfo {
            dtype: DType::U8,
            shape: vec![4],
        };
        let x = Tensor::new(DType::U8, info.shape.clone(), vec![0, 3, 4, 255]).unwrap();
        check_quantization(&info, &[0.5], &[3], 0).unwrap();
        assert_eq!(dequantize(&x, &[0.5], &[3], 0), vec![-1.5, 0.0, 0.5, 126.0]);
        // Per axis 1 of a [2, 3, 2] int8 tensor: element (i, j, k) uses scale[j], zp[j].
        let shape = vec![2, 3, 2];
        let raw: Vec<i8> = (0..12).map(|v| v * 11 - 60).collect();
        let x = Tensor::new(
            DType::I8,
            shape.clone(),
            raw.iter().map(|&v| v as u8).collect::<Vec<u8>>(),
        )
        .unwrap();
        let (scale, zp) = ([0.25f32, 2.0, -1.0], [1i64, -2, 0]);
        check_quantization(&x.info, &scale, &zp, 1).unwrap();
        let mut expected = vec![];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..2 {
                    let v = raw[(i * 3 + j) * 2 + k] as i64;
                    expected.push((v - zp[j]) as f32 * scale[j]);
                }
            }
        }
        assert_eq!(dequantize(&x, &scale, &zp, 1), expected);
        // An int32 beyond f32's integers subtracts exactly first (2^24 + 1 - 1, not
        // f32(2^24 + 1) - 1 = 2^24 - 1); no zero points means zero.
        let x = tensor(DType::I32, le(&[16_777_217i32], i32::to_le_bytes));
        assert_eq!(dequantize(&x, &[1.0], &[1], 0), vec![16_777_216.0]);
        assert_eq!(dequantize(&x, &[2.0], &[], 0), vec![33_554_432.0]);
        // Float8 inputs are decoded first.
        let x = tensor(DType::F8E4M3FN, vec![0x38]); // 1.0
        assert_eq!(dequantize(&x, &[3.0], &[], 0), vec![3.0]);
        // Scales that do not fit the axis, zero points that do not fit the scales.
        assert!(check_quantization(&x.info, &[1.0, 2.0], &[], 0).is_err());
        assert!(check_quantization(&info, &[1.0], &[1, 2], 0).is_err());
        assert!(check_quantization(&info, &[1.0; 4], &[], 1).is_err());
    }
}
