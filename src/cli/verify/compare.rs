//! Element-wise comparison of two tensors, and the layout permutations `verify` recognises
//! between a reference tensor and a candidate's (the candidate's dims are the reference's
//! permuted: `candidate.shape[i] == reference.shape[perm[i]]`).
use crate::interp::Value;
use anyhow::Result;
use ndarray::ArrayD;
use serde_json::json;

/// Comparison of one tensor.
#[derive(Clone, Debug)]
pub struct Diff {
    pub name: String,
    pub max_abs: f64,
    pub max_rel: f64,
    pub argmax_agrees: bool,
    pub within: bool,
    /// The permutation applied to the reference before comparing, if any.
    pub perm: Option<Vec<usize>>,
    /// Out of tolerance element by element, but the same values in another order (a layer
    /// that holds its tensor in another layout, e.g. a Flatten after a layout change).
    pub reordered: bool,
}

impl Diff {
    pub fn to_json(&self) -> serde_json::Value {
        json!({"name": self.name, "max_abs_error": self.max_abs, "max_rel_error": self.max_rel,
               "argmax_agrees": self.argmax_agrees, "within_tolerance": self.within,
               "permutation": self.perm, "same_values_reordered": self.reordered})
    }
}

/// The tolerance: an element passes when |Δ| ≤ max(atol, rtol·|ref|).
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

/// The permutations that turn a rank-`rank` channels-last tensor into channels-first and back
/// (none below rank 3).
pub fn layout_perms(rank: usize) -> Vec<Vec<usize>> {
    if rank < 3 {
        return vec![];
    }
    let to_first = std::iter::once(0)
        .chain(std::iter::once(rank - 1))
        .chain(1..rank - 1)
        .collect();
    let to_last = std::iter::once(0)
        .chain(2..rank)
        .chain(std::iter::once(1))
        .collect();
    vec![to_first, to_last]
}

/// The permutations (identity first, as None) under which `candidate` has `reference`'s dims.
pub fn perms_between(reference: &[usize], candidate: &[usize]) -> Vec<Option<Vec<usize>>> {
    let mut out = vec![];
    if reference.len() != candidate.len() {
        return out;
    }
    if reference == candidate {
        out.push(None);
    }
    for p in layout_perms(reference.len()) {
        if p.iter()
            .enumerate()
            .all(|(i, &j)| candidate[i] == reference[j])
            && !out.contains(&Some(p.clone()))
        {
            out.push(Some(p));
        }
    }
    out
}

/// Compares `candidate` with `reference` under the first permutation whose shapes agree that
/// keeps it within tolerance, else the one with the smallest error. None when no permutation
/// makes the shapes agree.
pub fn compare_any(
    name: &str,
    reference: &Value,
    candidate: &Value,
    tol: Tolerance,
) -> Result<Option<Diff>> {
    let mut best: Option<Diff> = None;
    for perm in perms_between(reference.shape(), candidate.shape()) {
        let d = compare(name, reference, candidate, perm.as_deref(), tol)?;
        if d.within {
            return Ok(Some(d));
        }
        if best.as_ref().is_none_or(|b| d.max_abs < b.max_abs) {
            best = Some(d);
        }
    }
    Ok(best)
}

/// Compares two values element by element, `reference` permuted by `perm` first.
pub fn compare(
    name: &str,
    reference: &Value,
    candidate: &Value,
    perm: Option<&[usize]>,
    tol: Tolerance,
) -> Result<Diff> {
    let r = reference.to_f32();
    let r = match perm {
        Some(p) => r.permuted_axes(ndarray::IxDyn(p)),
        None => r,
    };
    let c = candidate.to_f32();
    if r.shape() != c.shape() {
        anyhow::bail!(
            "'{name}': reference shape {:?} differs from candidate shape {:?}",
            r.shape(),
            c.shape()
        );
    }
    let (mut max_abs, mut max_rel, mut within) = (0f64, 0f64, true);
    for (&a, &b) in r.iter().zip(c.iter()) {
        let (a, b) = (a as f64, b as f64);
        let d = (a - b).abs();
        let d = if d.is_nan() && !(a.is_nan() && b.is_nan()) {
            f64::INFINITY
        } else if d.is_nan() {
            0.0
        } else {
            d
        };
        max_abs = max_abs.max(d);
        max_rel = max_rel.max(d / a.abs().max(f64::MIN_POSITIVE));
        if d > tol.atol.max(tol.rtol * a.abs()) {
            within = false;
        }
    }
    Ok(Diff {
        name: name.to_string(),
        max_abs,
        max_rel,
        argmax_agrees: r.is_empty() || argmax(&r) == argmax(&c),
        within,
        perm: perm.map(<[usize]>::to_vec),
        reordered: false,
    })
}

/// For a layer out of tolerance: whether its values, sorted, agree within tolerance (sorting
/// moves no pair further apart, so a corrupted value still shows).
pub fn mark_reordered(d: &mut Diff, reference: &Value, candidate: &Value, tol: Tolerance) {
    if d.within || reference.len() != candidate.len() {
        return;
    }
    let sorted = |v: &Value| {
        let mut x: Vec<f32> = v.to_f32().iter().copied().collect();
        x.sort_by(f32::total_cmp);
        x
    };
    let (r, c) = (sorted(reference), sorted(candidate));
    d.reordered = r.iter().zip(&c).all(|(&a, &b)| {
        let (a, b) = (a as f64, b as f64);
        (a - b).abs() <= tol.atol.max(tol.rtol * a.abs()) || (a.is_nan() && b.is_nan())
    });
}

/// The position of the largest element in logical (row-major) order.
fn argmax(v: &ArrayD<f32>) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_perms_of_rank_4() {
        assert_eq!(layout_perms(4), vec![vec![0, 3, 1, 2], vec![0, 2, 3, 1]]);
        assert!(layout_perms(2).is_empty());
    }

    #[test]
    fn perms_between_finds_the_layout_change() {
        // NHWC [1, 8, 6, 3] read as NCHW [1, 3, 8, 6].
        assert_eq!(
            perms_between(&[1, 8, 6, 3], &[1, 3, 8, 6]),
            vec![Some(vec![0, 3, 1, 2])]
        );
        assert_eq!(perms_between(&[1, 8, 6, 3], &[1, 8, 6, 3]), vec![None]);
        assert!(perms_between(&[1, 8, 6, 3], &[1, 8, 3, 5]).is_empty());
    }

    #[test]
    fn compare_permutes_the_reference() {
        let tol = Tolerance {
            atol: 1e-4,
            rtol: 1e-4,
        };
        let r = ArrayD::from_shape_fn(ndarray::IxDyn(&[1, 2, 3]), |i| (i[1] * 3 + i[2]) as f32);
        // Candidate is channels-first: [1, 3, 2], c[0, k, j] = r[0, j, k].
        let c = ArrayD::from_shape_fn(ndarray::IxDyn(&[1, 3, 2]), |i| (i[2] * 3 + i[1]) as f32);
        let d = compare_any("t", &Value::F32(r.clone()), &Value::F32(c), tol)
            .unwrap()
            .unwrap();
        assert!(d.within && d.max_abs == 0.0, "{d:?}");
        assert_eq!(d.perm, Some(vec![0, 2, 1]));
        // The same values in another order: a reordering, not a divergence.
        let flat =
            |v: Vec<f32>| Value::F32(ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 6]), v).unwrap());
        let (a, b) = (
            flat(vec![0., 1., 2., 3., 4., 5.]),
            flat(vec![0., 3., 1., 4., 2., 5.]),
        );
        let mut d = compare("f", &a, &b, None, tol).unwrap();
        mark_reordered(&mut d, &a, &b, tol);
        assert!(!d.within && d.reordered, "{d:?}");
        let c = flat(vec![0., 3., 1., 4., 2., 5.5]);
        let mut d = compare("f", &a, &c, None, tol).unwrap();
        mark_reordered(&mut d, &a, &c, tol);
        assert!(!d.reordered, "{d:?}");
        let mut bad = r.clone();
        bad[[0, 1, 2]] += 0.5;
        let d = compare("t", &Value::F32(r), &Value::F32(bad), None, tol).unwrap();
        assert!(!d.within && (d.max_abs - 0.5).abs() < 1e-6, "{d:?}");
    }
}
