//! Axis permutation of raw tensor bytes (a transpose), as weight transforms need it: kernels
//! moved between layouts, Keras matrices to the IR's. Axes that stay adjacent are merged first,
//! so a permutation keeping the innermost axis copies whole runs; the rest is copied element by
//! element in cache-sized tiles.

/// `transpose(x, perm)` of the C-order tensor `data` (shape `dims`, `elem` bytes per element):
/// output axis `i` is input axis `perm[i]`.
pub fn permute_bytes(data: &[u8], dims: &[usize], perm: &[usize], elem: usize) -> Vec<u8> {
    assert_eq!(dims.len(), perm.len(), "one permutation entry per axis");
    assert_eq!(
        data.len(),
        dims.iter().product::<usize>() * elem,
        "data fits the shape"
    );
    let (mut dims, mut perm) = merged(dims, perm);
    let mut elem = elem;
    // An innermost axis that stays innermost is a contiguous run: one wide element.
    if perm.len() > 1 && perm[perm.len() - 1] == dims.len() - 1 {
        elem *= dims.pop().expect("rank > 1");
        perm.pop();
    }
    let mut out = vec![0u8; data.len()];
    if perm.len() <= 1 || data.is_empty() {
        out.copy_from_slice(data);
        return out;
    }
    let mut strides = vec![1usize; dims.len()];
    for i in (0..dims.len() - 1).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    tiled(data, &dims, &perm, &strides, elem, &mut out);
    out
}

/// Elements per side of the square tiles the copy walks.
const TILE: usize = 16;

/// The gather for a permutation whose innermost output axis `l` is not the innermost input
/// axis: the output axis `m` holding the innermost input axis and `l` are walked in tiles small
/// enough for the cache, so reads run along `m` and writes along `l`; the other axes are
/// walked by an odometer.
fn tiled(
    data: &[u8],
    dims: &[usize],
    perm: &[usize],
    strides: &[usize],
    elem: usize,
    out: &mut [u8],
) {
    let rank = perm.len();
    let l = rank - 1;
    let m = perm
        .iter()
        .position(|&a| a == rank - 1)
        .expect("a permutation holds every axis");
    let out_dims: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
    let mut out_strides = vec![1usize; rank];
    for k in (0..rank - 1).rev() {
        out_strides[k] = out_strides[k + 1] * out_dims[k + 1];
    }
    let (len_l, in_stride_l) = (out_dims[l], strides[perm[l]]);
    let (len_m, out_stride_m) = (out_dims[m], out_strides[m]);
    let others: Vec<usize> = (0..rank).filter(|&k| k != l && k != m).collect();
    let other_dims: Vec<usize> = others.iter().map(|&k| out_dims[k]).collect();
    let mut index = vec![0usize; others.len()];
    let (mut in_base, mut out_base) = (0usize, 0usize);
    let blocks = other_dims.iter().product::<usize>();
    macro_rules! walk {
        ($n:expr) => {
            for _ in 0..blocks {
                for l0 in (0..len_l).step_by(TILE) {
                    for m0 in (0..len_m).step_by(TILE) {
                        for li in l0..(l0 + TILE).min(len_l) {
                            let src = in_base + li * in_stride_l;
                            let dst = out_base + li;
                            for mi in m0..(m0 + TILE).min(len_m) {
                                let (s, d) = ((src + mi) * $n, (dst + mi * out_stride_m) * $n);
                                out[d..d + $n].copy_from_slice(&data[s..s + $n]);
                            }
                        }
                    }
                }
                for k in (0..index.len()).rev() {
                    let axis = others[k];
                    index[k] += 1;
                    in_base += strides[perm[axis]];
                    out_base += out_strides[axis];
                    if index[k] < other_dims[k] {
                        break;
                    }
                    in_base -= strides[perm[axis]] * index[k];
                    out_base -= out_strides[axis] * index[k];
                    index[k] = 0;
                }
            }
        };
    }
    match elem {
        1 => walk!(1),
        2 => walk!(2),
        4 => walk!(4),
        8 => walk!(8),
        _ => walk!(elem),
    }
}

/// `dims` and `perm` with size-1 axes dropped and each run of input axes that stays adjacent
/// and in order in the output merged into one axis.
fn merged(dims: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    // Drop size-1 axes, renumbering the rest.
    let kept: Vec<usize> = (0..dims.len()).filter(|&a| dims[a] != 1).collect();
    let renumber = |a: usize| kept.iter().position(|&k| k == a);
    let perm: Vec<usize> = perm.iter().filter_map(|&a| renumber(a)).collect();
    let dims: Vec<usize> = kept.iter().map(|&a| dims[a]).collect();
    // Group output axes into runs of consecutive input axes.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &a in &perm {
        match groups.last_mut() {
            Some(g) if *g.last().expect("non-empty") + 1 == a => g.push(a),
            _ => groups.push(vec![a]),
        }
    }
    // Number the groups in input order.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| groups[g][0]);
    let merged_dims: Vec<usize> = order
        .iter()
        .map(|&g| groups[g].iter().map(|&a| dims[a]).product())
        .collect();
    let mut merged_perm = vec![0; groups.len()];
    for (new_axis, &g) in order.iter().enumerate() {
        merged_perm[g] = new_axis;
    }
    (merged_dims, merged_perm)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element-by-element reference: output index → input index through the definition.
    fn reference(data: &[u32], dims: &[usize], perm: &[usize]) -> Vec<u32> {
        let out_dims: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
        let n: usize = dims.iter().product();
        (0..n)
            .map(|flat| {
                let mut rem = flat;
                let mut out_idx = vec![0; dims.len()];
                for k in (0..dims.len()).rev() {
                    out_idx[k] = rem % out_dims[k];
                    rem /= out_dims[k];
                }
                let mut in_idx = vec![0; dims.len()];
                for (k, &a) in perm.iter().enumerate() {
                    in_idx[a] = out_idx[k];
                }
                let at = in_idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i);
                data[at]
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_on_every_permutation_of_rank_four() {
        let dims = [3, 1, 4, 5];
        let data: Vec<u32> = (0..60u32).map(|v| v.wrapping_mul(2654435761)).collect();
        let mut perms = vec![];
        for a in 0..4 {
            for b in 0..4 {
                for c in 0..4 {
                    for d in 0..4 {
                        let p = [a, b, c, d];
                        let mut s = p;
                        s.sort();
                        if s == [0, 1, 2, 3] {
                            perms.push(p);
                        }
                    }
                }
            }
        }
        assert_eq!(perms.len(), 24);
        for p in perms {
            check(&data, &dims, &p);
        }
    }

    /// permute_bytes on `data` as u32 bytes agrees with the definition.
    fn check(data: &[u32], dims: &[usize], p: &[usize]) {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let got: Vec<u32> = permute_bytes(&bytes, dims, p, 4)
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, reference(data, dims, p), "perm {p:?}");
    }

    #[test]
    fn axes_longer_than_a_tile() {
        let dims = [TILE + 1, 3, 2 * TILE + 1];
        let n = dims.iter().product::<usize>() as u32;
        let data: Vec<u32> = (0..n).collect();
        for p in [[2, 1, 0], [2, 0, 1], [1, 2, 0], [0, 2, 1], [1, 0, 2]] {
            check(&data, &dims, &p);
        }
    }

    #[test]
    fn odd_element_sizes_and_identity() {
        // 3-byte elements, 2 x 3 transposed.
        let data: Vec<u8> = (0..18).collect();
        let t = permute_bytes(&data, &[2, 3], &[1, 0], 3);
        assert_eq!(
            t,
            vec![0, 1, 2, 9, 10, 11, 3, 4, 5, 12, 13, 14, 6, 7, 8, 15, 16, 17]
        );
        assert_eq!(permute_bytes(&data, &[2, 3], &[0, 1], 3), data);
    }
}
