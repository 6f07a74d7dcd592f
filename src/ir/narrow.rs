//! The narrow element types: the 8-bit floats (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, E8M0), the
//! 4-bit float E2M1 and the packing of the sub-byte types.
//!
//! In IR tensors every one of them takes one byte per element: the 8-bit floats as their bit
//! patterns, FLOAT4E2M1 as its 4-bit pattern in the low nibble (high nibble zero), INT4/INT2 as
//! the value in two's complement over the whole byte (−8..7, −2..1) and UINT4/UINT2 as the
//! value (0..15, 0..3). Frameworks (ONNX) pack the sub-byte types: two 4-bit or four 2-bit
//! elements to a byte, the first in the lowest bits; [`pack`] and [`unpack`] convert.
//!
//! Encoding follows ONNX's Cast: round to nearest, ties to even, on the value rounded to the
//! target's mantissa width; `saturate` clamps values beyond the largest finite value (and
//! infinities) to it, otherwise they become infinity (E5M2) or NaN (the others). The FNUZ
//! types have no negative zero (−0 encodes as +0, NaN is 0x80). E2M1 has neither infinities
//! nor NaN and always saturates (NaN encodes as +0). E8M0 (powers of two 2^(e − 127), NaN
//! 0xFF, no sign and no zero) keeps the float32 exponent and rounds by [`RoundMode`].
use super::DType;
use anyhow::{bail, Result};

/// How a format spends its largest codes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    /// IEEE-like: the all-ones exponent holds ±infinity (mantissa 0) and NaNs.
    Ieee,
    /// "Finite": no infinities; only S.1…1.1…1 is NaN.
    Fn,
    /// "Finite, unsigned zero": no infinities, no −0; 0x80 (the negative zero) is NaN.
    Fnuz,
    /// Neither infinities nor NaN.
    Finite,
}

/// Layout of a sign + exponent + mantissa format.
#[derive(Clone, Copy)]
struct Format {
    ebits: u32,
    mbits: u32,
    bias: i32,
    special: Special,
}

fn format(dtype: DType) -> Option<Format> {
    let f = |ebits, mbits, bias, special| {
        Some(Format {
            ebits,
            mbits,
            bias,
            special,
        })
    };
    match dtype {
        DType::F8E4M3FN => f(4, 3, 7, Special::Fn),
        DType::F8E4M3FNUZ => f(4, 3, 8, Special::Fnuz),
        DType::F8E5M2 => f(5, 2, 15, Special::Ieee),
        DType::F8E5M2FNUZ => f(5, 2, 16, Special::Fnuz),
        DType::F4E2M1 => f(2, 1, 1, Special::Finite),
        _ => None,
    }
}

impl Format {
    fn sign_bit(self) -> u8 {
        1 << (self.ebits + self.mbits)
    }
    fn emax_field(self) -> u32 {
        (1 << self.ebits) - 1
    }
    fn mmask(self) -> u32 {
        (1 << self.mbits) - 1
    }
    /// Code of the largest finite value (positive).
    fn max_code(self) -> u8 {
        let (e, m) = match self.special {
            Special::Ieee => (self.emax_field() - 1, self.mmask()),
            Special::Fn => (self.emax_field(), self.mmask() - 1),
            Special::Fnuz | Special::Finite => (self.emax_field(), self.mmask()),
        };
        ((e << self.mbits) | m) as u8
    }
    fn nan_code(self, negative: bool) -> u8 {
        let sign = if negative { self.sign_bit() } else { 0 };
        match self.special {
            Special::Ieee | Special::Fn => sign | (self.sign_bit() - 1),
            Special::Fnuz => 0x80,
            Special::Finite => 0,
        }
    }
    fn decode(self, code: u8) -> f32 {
        let c = code as u32;
        let negative = code & self.sign_bit() != 0;
        let e = (c >> self.mbits) & self.emax_field();
        let m = c & self.mmask();
        match self.special {
            Special::Fnuz if code == 0x80 => return f32::NAN,
            Special::Fn if e == self.emax_field() && m == self.mmask() => {
                return if negative { -f32::NAN } else { f32::NAN }
            }
            Special::Ieee if e == self.emax_field() => {
                let v = if m == 0 { f32::INFINITY } else { f32::NAN };
                return if negative { -v } else { v };
            }
            _ => {}
        }
        let v = if e == 0 {
            m as f64 * pow2(1 - self.bias - self.mbits as i32)
        } else {
            ((1u32 << self.mbits) + m) as f64 * pow2(e as i32 - self.bias - self.mbits as i32)
        };
        (if negative { -v } else { v }) as f32
    }
    fn encode(self, v: f32, saturate: bool) -> u8 {
        let negative = v.is_sign_negative();
        let sign = if negative { self.sign_bit() } else { 0 };
        if v.is_nan() {
            return self.nan_code(negative);
        }
        let max = self.decode(self.max_code()) as f64;
        let a = (v as f64).abs();
        let rounded = if a.is_infinite() {
            a
        } else {
            // Quantum of the binade (the subnormal one for tiny values); a / q is exact.
            let e = exponent(a).max(1 - self.bias);
            let q = pow2(e - self.mbits as i32);
            (a / q).round_ties_even() * q
        };
        if rounded > max {
            let sat = saturate || self.special == Special::Finite;
            return match self.special {
                _ if sat => sign | self.max_code(),
                Special::Ieee => sign | (self.emax_field() << self.mbits) as u8,
                _ => self.nan_code(negative),
            };
        }
        if rounded == 0.0 {
            return if self.special == Special::Fnuz {
                0
            } else {
                sign
            };
        }
        let e = exponent(rounded);
        let code = if e < 1 - self.bias {
            (rounded / pow2(1 - self.bias - self.mbits as i32)) as u32
        } else {
            let m = (rounded / pow2(e - self.mbits as i32)) as u32 - (1 << self.mbits);
            (((e + self.bias) as u32) << self.mbits) | m
        };
        sign | code as u8
    }
}

/// 2^e as f64 (exact for the exponents used here).
fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// floor(log2 a) of a positive, finite, normal f64.
fn exponent(a: f64) -> i32 {
    ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023
}

/// Rounding of a cast to FLOAT8E8M0 (ONNX Cast's `round_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundMode {
    /// Away from zero: any fraction takes the next power of two.
    Up,
    /// Toward zero: the float32 exponent as it is.
    Down,
    /// To the nearest power of two, ties up.
    Nearest,
}

impl RoundMode {
    pub const NAMES: &'static [&'static str] = &["up", "down", "nearest"];

    pub fn from_name(name: &str) -> Result<RoundMode> {
        Ok(match name {
            "up" => RoundMode::Up,
            "down" => RoundMode::Down,
            "nearest" => RoundMode::Nearest,
            _ => bail!("unknown round_mode '{name}' (expected up, down or nearest)"),
        })
    }
}

/// FLOAT8E8M0 code of `v`: the float32 exponent field, rounded by `mode` on the mantissa;
/// NaN and infinities give NaN (0xFF), as does rounding past 2^127 unless `saturate`. The sign
/// is ignored (negative values are undefined in ONNX).
fn encode_e8m0(v: f32, saturate: bool, mode: RoundMode) -> u8 {
    let bits = v.to_bits();
    let e = (bits >> 23) & 0xff;
    if e == 0xff {
        return 0xff;
    }
    let frac = bits & 0x7f_ffff;
    let up = match mode {
        RoundMode::Down => false,
        RoundMode::Up => frac != 0,
        // The first dropped bit set: above half, or exactly half of a normal value.
        RoundMode::Nearest => frac & 0x40_0000 != 0 && (frac & 0x3f_ffff != 0 || e > 0),
    };
    if up && e == 0xfe && saturate {
        return 0xfe;
    }
    (e + up as u32) as u8
}

/// The value of one narrow-float code (see the module doc for the layouts).
pub fn decode(dtype: DType, code: u8) -> f32 {
    match (dtype, format(dtype)) {
        (DType::F8E8M0, _) if code == 0xff => f32::NAN,
        (DType::F8E8M0, _) => pow2(code as i32 - 127) as f32,
        (_, Some(f)) => f.decode(code),
        _ => unreachable!("{dtype} is not a narrow float"),
    }
}

/// The code of `v` in a narrow float `dtype`, with ONNX Cast's rules (see the module doc).
pub fn encode(dtype: DType, v: f32, saturate: bool, mode: RoundMode) -> u8 {
    match (dtype, format(dtype)) {
        (DType::F8E8M0, _) => encode_e8m0(v, saturate, mode),
        (_, Some(f)) => f.encode(v, saturate),
        _ => unreachable!("{dtype} is not a narrow float"),
    }
}

/// The largest finite value of a narrow float `dtype`.
pub fn max(dtype: DType) -> f32 {
    match (dtype, format(dtype)) {
        (DType::F8E8M0, _) => decode(dtype, 0xfe),
        (_, Some(f)) => f.decode(f.max_code()),
        _ => unreachable!("{dtype} is not a narrow float"),
    }
}

/// Where rounding to a sign + exponent + mantissa `dtype` overflows: the midpoint between its
/// largest finite value and the next (missing) one, and whether that tie itself stays in range
/// (it rounds to the even one of the two: the largest value when its mantissa is even).
pub fn overflow_tie(dtype: DType) -> (f32, bool) {
    let f = format(dtype).unwrap_or_else(|| unreachable!("{dtype} has no mantissa"));
    let top = f.max_code();
    let max = f.decode(top);
    let ulp = max - f.decode(top - 1);
    (max + ulp / 2.0, top & 1 == 0)
}

/// `v` rounded to a narrow float `dtype` (encode, then decode).
pub fn round(dtype: DType, v: f32, saturate: bool, mode: RoundMode) -> f32 {
    decode(dtype, encode(dtype, v, saturate, mode))
}

/// Packs one-byte-per-element IR bytes of a sub-byte `dtype` as ONNX stores them: 8 / bits
/// elements to a byte, the first in the lowest bits, the last byte padded with zeros.
pub fn pack(dtype: DType, elems: &[u8]) -> Vec<u8> {
    let bits = dtype.bits();
    let per = 8 / bits;
    let mask = ((1u16 << bits) - 1) as u8;
    elems
        .chunks(per)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |b, (i, &v)| b | ((v & mask) << (i * bits)))
        })
        .collect()
}

/// Inverse of [`pack`]: `n` elements, one byte each; INT4 / INT2 sign-extended.
pub fn unpack(dtype: DType, packed: &[u8], n: usize) -> Result<Vec<u8>> {
    let bits = dtype.bits();
    let need = packed_len(dtype, n);
    if packed.len() != need {
        bail!(
            "{} packed bytes; {n} {dtype} elements need {need}",
            packed.len()
        );
    }
    let signed = matches!(dtype, DType::I4 | DType::I2);
    Ok((0..n)
        .map(|i| {
            let v = (packed[i * bits / 8] >> ((i * bits) % 8)) & (((1u16 << bits) - 1) as u8);
            if signed {
                ((v << (8 - bits)) as i8 >> (8 - bits)) as u8
            } else {
                v
            }
        })
        .collect())
}

/// Bytes of `n` packed elements of `dtype` (n × size for the types of a byte or more).
pub fn packed_len(dtype: DType, n: usize) -> usize {
    (n * dtype.bits()).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAT: bool = true;

    fn enc(d: DType, v: f32, saturate: bool) -> u8 {
        encode(d, v, saturate, RoundMode::Up)
    }

    // Largest finite values and smallest subnormals from the format definitions
    // (OCP 8-bit floating point spec; ONNX docs for the FNUZ variants and FLOAT4E2M1).
    #[test]
    fn extremes_decode() {
        assert_eq!(decode(DType::F8E4M3FN, 0x7e), 448.0);
        assert_eq!(decode(DType::F8E4M3FN, 0x01), 2f32.powi(-9));
        assert!(decode(DType::F8E4M3FN, 0x7f).is_nan());
        assert!(decode(DType::F8E4M3FN, 0xff).is_nan());
        assert_eq!(decode(DType::F8E4M3FN, 0x80), 0.0);
        assert!(decode(DType::F8E4M3FN, 0x80).is_sign_negative());
        assert_eq!(decode(DType::F8E4M3FNUZ, 0x7f), 240.0);
        assert_eq!(decode(DType::F8E4M3FNUZ, 0x01), 2f32.powi(-10));
        assert!(decode(DType::F8E4M3FNUZ, 0x80).is_nan());
        assert_eq!(decode(DType::F8E5M2, 0x7b), 57344.0);
        assert_eq!(decode(DType::F8E5M2, 0x7c), f32::INFINITY);
        assert_eq!(decode(DType::F8E5M2, 0xfc), f32::NEG_INFINITY);
        assert!(decode(DType::F8E5M2, 0x7d).is_nan());
        assert_eq!(decode(DType::F8E5M2, 0x01), 2f32.powi(-16));
        assert_eq!(decode(DType::F8E5M2FNUZ, 0x7f), 57344.0);
        assert_eq!(decode(DType::F8E5M2FNUZ, 0x01), 2f32.powi(-17));
        assert!(decode(DType::F8E5M2FNUZ, 0x80).is_nan());
        assert_eq!(decode(DType::F4E2M1, 0x7), 6.0);
        assert_eq!(decode(DType::F4E2M1, 0x1), 0.5);
        assert_eq!(decode(DType::F4E2M1, 0xf), -6.0);
        assert_eq!(decode(DType::F8E8M0, 127), 1.0);
        assert_eq!(decode(DType::F8E8M0, 0), 2f32.powi(-127));
        assert_eq!(decode(DType::F8E8M0, 254), 2f32.powi(127));
        assert!(decode(DType::F8E8M0, 255).is_nan());
        assert_eq!(max(DType::F8E4M3FN), 448.0);
        // 448 = 1.110 · 2^8 (even): the tie 464 stays; 240 = 1.111 · 2^7 (odd): 248 overflows.
        assert_eq!(overflow_tie(DType::F8E4M3FN), (464.0, true));
        assert_eq!(overflow_tie(DType::F8E4M3FNUZ), (248.0, false));
        assert_eq!(overflow_tie(DType::F8E5M2), (61440.0, false));
        assert_eq!(max(DType::F8E5M2FNUZ), 57344.0);
    }

    #[test]
    fn one_and_friends_encode() {
        // 1.0 = exponent field equal to the bias, mantissa 0.
        assert_eq!(enc(DType::F8E4M3FN, 1.0, SAT), 0x38);
        assert_eq!(enc(DType::F8E4M3FNUZ, 1.0, SAT), 0x40);
        assert_eq!(enc(DType::F8E5M2, 1.0, SAT), 0x3c);
        assert_eq!(enc(DType::F8E5M2FNUZ, 1.0, SAT), 0x40);
        assert_eq!(enc(DType::F4E2M1, 1.0, SAT), 0x2);
        assert_eq!(enc(DType::F8E4M3FN, -1.5, SAT), 0xbc);
        // E4M3FN 0.46875 = 1.111 × 2^-2: exponent 5, mantissa 7.
        assert_eq!(enc(DType::F8E4M3FN, 0.478_925_47, SAT), 0x2f);
    }

    #[test]
    fn rounds_to_nearest_even() {
        // E4M3FN around 1: step 1/8. 1 + 1/16 is a tie → 1 (even mantissa 0);
        // 1 + 3/16 is a tie between 1.125 (odd) and 1.25 (even) → 1.25.
        assert_eq!(round(DType::F8E4M3FN, 1.0625, SAT, RoundMode::Up), 1.0);
        assert_eq!(round(DType::F8E4M3FN, 1.1875, SAT, RoundMode::Up), 1.25);
        assert_eq!(round(DType::F8E4M3FN, 1.07, SAT, RoundMode::Up), 1.125);
        // E2M1 values 0, 0.5, 1, 1.5, 2, 3, 4, 6: ties 0.25 → 0, 0.75 → 1, 2.5 → 2, 3.5 → 4, 5 → 4.
        for (x, y) in [(0.25, 0.0), (0.75, 1.0), (2.5, 2.0), (3.5, 4.0), (5.0, 4.0)] {
            assert_eq!(round(DType::F4E2M1, x, SAT, RoundMode::Up), y, "{x}");
        }
        // Subnormals: E4M3FN's smallest step is 2^-9; 1.5 · 2^-10 rounds up to 2^-9,
        // 2^-11 (below half a step) to 0.
        assert_eq!(
            round(DType::F8E4M3FN, 1.5 * 2f32.powi(-10), SAT, RoundMode::Up),
            2f32.powi(-9)
        );
        assert_eq!(
            round(DType::F8E4M3FN, 2f32.powi(-11), SAT, RoundMode::Up),
            0.0
        );
    }

    #[test]
    fn out_of_range_per_the_cast_tables() {
        let inf = f32::INFINITY;
        // Saturating: ±FLT_MAX for large values and infinities.
        assert_eq!(enc(DType::F8E4M3FN, 1e6, SAT), 0x7e);
        assert_eq!(enc(DType::F8E4M3FN, -inf, SAT), 0xfe);
        assert_eq!(enc(DType::F8E5M2, inf, SAT), 0x7b);
        assert_eq!(enc(DType::F8E4M3FNUZ, inf, SAT), 0x7f);
        assert_eq!(enc(DType::F8E5M2FNUZ, -1e6, SAT), 0xff);
        // 464 is the tie between 448 and the (missing) 480: even → 448, in range.
        assert_eq!(enc(DType::F8E4M3FN, 464.0, false), 0x7e);
        // Not saturating: NaN, except E5M2's infinities.
        assert_eq!(enc(DType::F8E4M3FN, 465.0, false), 0x7f);
        assert_eq!(enc(DType::F8E4M3FN, -inf, false), 0xff);
        assert_eq!(enc(DType::F8E4M3FNUZ, inf, false), 0x80);
        assert_eq!(enc(DType::F8E5M2, -1e6, false), 0xfc);
        assert_eq!(enc(DType::F8E5M2, inf, false), 0x7c);
        assert_eq!(enc(DType::F8E5M2FNUZ, 1e6, false), 0x80);
        // E2M1 always saturates.
        assert_eq!(enc(DType::F4E2M1, -inf, false), 0xf);
        // Zeros: FNUZ has no −0.
        assert_eq!(enc(DType::F8E4M3FN, -0.0, SAT), 0x80);
        assert_eq!(enc(DType::F8E5M2, -1e-9, SAT), 0x80);
        assert_eq!(enc(DType::F8E4M3FNUZ, -0.0, SAT), 0x00);
        assert_eq!(enc(DType::F8E5M2FNUZ, -1e-9, SAT), 0x00);
        // NaN.
        assert!(round(DType::F8E5M2, f32::NAN, SAT, RoundMode::Up).is_nan());
        assert_eq!(enc(DType::F8E4M3FNUZ, f32::NAN, SAT), 0x80);
    }

    #[test]
    fn e8m0_round_modes() {
        let e = |v: f32, sat, mode| encode(DType::F8E8M0, v, sat, mode);
        assert_eq!(e(1.0, SAT, RoundMode::Up), 127);
        assert_eq!(e(1.1, SAT, RoundMode::Up), 128);
        assert_eq!(e(1.1, SAT, RoundMode::Down), 127);
        assert_eq!(e(1.4, SAT, RoundMode::Nearest), 127);
        assert_eq!(e(1.5, SAT, RoundMode::Nearest), 128);
        assert_eq!(e(0.0, SAT, RoundMode::Up), 0);
        assert_eq!(e(f32::INFINITY, SAT, RoundMode::Up), 255);
        assert_eq!(e(f32::MAX, SAT, RoundMode::Up), 254);
        assert_eq!(e(f32::MAX, false, RoundMode::Up), 255);
    }

    #[test]
    fn packing_is_low_nibble_first() {
        // INT4 [1, -1, 7] → bytes 0xF1, 0x07 (ONNX packs the first element in the low bits).
        let elems = [1u8, (-1i8) as u8, 7];
        assert_eq!(pack(DType::I4, &elems), vec![0xf1, 0x07]);
        assert_eq!(unpack(DType::I4, &[0xf1, 0x07], 3).unwrap(), elems.to_vec());
        assert_eq!(unpack(DType::U4, &[0xf1], 2).unwrap(), vec![1, 15]);
        // INT2 [1, -2, -1, 0, 1] → 0b00_11_10_01, 0b01.
        let elems = [1u8, (-2i8) as u8, (-1i8) as u8, 0, 1];
        assert_eq!(pack(DType::I2, &elems), vec![0b0011_1001, 0b01]);
        assert_eq!(
            unpack(DType::I2, &[0b0011_1001, 0b01], 5).unwrap(),
            elems.to_vec()
        );
        assert!(unpack(DType::U2, &[0], 5).is_err());
        assert_eq!(packed_len(DType::F4E2M1, 3), 2);
        assert_eq!(packed_len(DType::F32, 3), 12);
    }
}
