//! Helpers shared by the op families: broadcasting, per-axis lane processing, spatial layout
//! normalisation and simple data parallelism over scoped threads.
use super::Value;
use crate::ir::ops::shape_rules;
use anyhow::{bail, Result};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

/// Number of worker threads used by the parallel kernels.
pub fn threads() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("MMDNN_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(16)
    })
}

/// Work (a rough count of simple operations) below which [`par_chunks`] stays on one thread:
/// memory-bound passes over typical activations gain little from a second thread and lose
/// much when the machine is busy.
pub const PAR_MIN_WORK: usize = 1 << 21;

/// Calls `f(first_item, chunk)` on consecutive chunks of `data` (each a whole number of
/// `item` elements), in parallel when `work` (a rough operation count) makes it worth it.
pub fn par_chunks<T: Send>(
    data: &mut [T],
    item: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let items = data.len().checked_div(item).unwrap_or(0);
    let t = threads().min(items).max(1);
    if t == 1 || work < PAR_MIN_WORK {
        f(0, data);
        return;
    }
    let per = items.div_ceil(t);
    std::thread::scope(|s| {
        let mut rest = data;
        let mut first = 0;
        let f = &f;
        let mut handles = Vec::new();
        while !rest.is_empty() {
            let n = (per * item).min(rest.len());
            let (chunk, tail) = rest.split_at_mut(n);
            rest = tail;
            let start = first;
            first += n / item;
            if rest.is_empty() {
                f(start, chunk);
            } else {
                handles.push(s.spawn(move || f(start, chunk)));
            }
        }
        for h in handles {
            h.join().expect("worker thread panicked");
        }
    });
}

/// Normalises a possibly negative axis.
pub fn axis(axis: i64, rank: usize) -> Result<usize> {
    shape_rules::norm_axis(axis, rank)
}

/// NumPy broadcast of two concrete shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let to_i = |s: &[usize]| s.iter().map(|&d| d as i64).collect::<Vec<_>>();
    Ok(shape_rules::broadcast(&to_i(a), &to_i(b))?
        .into_iter()
        .map(|d| d as usize)
        .collect())
}

/// Elementwise `f(a, b)` with NumPy broadcasting.
pub fn zip_map<A: Copy, B: Copy, C>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    mut f: impl FnMut(A, B) -> C,
) -> Result<ArrayD<C>> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let av = a.broadcast(IxDyn(&shape)).expect("broadcastable");
    let bv = b.broadcast(IxDyn(&shape)).expect("broadcastable");
    Ok(Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y)))
}

/// Elementwise `a = f(a, b)` in place, when `b` broadcasts to `a`'s shape.
pub fn zip_assign<A: Copy, B: Copy>(
    a: &mut ArrayD<A>,
    b: &ArrayD<B>,
    mut f: impl FnMut(A, B) -> A,
) -> bool {
    match b.broadcast(a.raw_dim()) {
        Some(bv) => {
            Zip::from(a).and(&bv).for_each(|x, &y| *x = f(*x, y));
            true
        }
        None => false,
    }
}

/// Applies `f(input_lane, output_lane)` to every 1-d lane of `x` along `axis`; output lanes
/// have `out_len` elements. Returns the result in standard layout.
pub fn map_lanes<T: Copy + Default + Send + Sync>(
    x: ArrayViewD<T>,
    axis: usize,
    out_len: usize,
    f: impl Fn(&[T], &mut [T]) + Sync,
) -> ArrayD<T> {
    let rank = x.ndim();
    let in_len = x.shape()[axis];
    let mut perm: Vec<usize> = (0..rank).filter(|&a| a != axis).collect();
    perm.push(axis);
    let moved = x.permuted_axes(IxDyn(&perm));
    let src = moved.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    let lanes = src
        .len()
        .checked_div(in_len)
        .unwrap_or_else(|| moved.shape()[..rank - 1].iter().product());
    let mut out = vec![T::default(); lanes * out_len];
    par_chunks(
        &mut out,
        out_len.max(1),
        lanes * (in_len + out_len) * 4,
        |first, chunk| {
            if out_len == 0 {
                return;
            }
            for (k, o) in chunk.chunks_mut(out_len).enumerate() {
                let l = first + k;
                f(&src[l * in_len..(l + 1) * in_len], o);
            }
        },
    );
    let mut shape: Vec<usize> = moved.shape().to_vec();
    shape[rank - 1] = out_len;
    let arr = ArrayD::from_shape_vec(IxDyn(&shape), out).expect("sizes agree");
    // Move the axis back.
    let mut inv = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    arr.permuted_axes(IxDyn(&inv))
        .as_standard_layout()
        .into_owned()
}

/// Reshapes an activation to 5-d [N, C, D, H, W] channels first (a copy for channels_last),
/// returning also the original spatial rank. 1-d and 2-d inputs get leading size-1 spatial axes.
pub fn to_ncdhw(x: ArrayD<f32>, channels_last: bool) -> Result<(ArrayD<f32>, usize)> {
    let rank = x.ndim();
    if !(3..=5).contains(&rank) {
        bail!("expects a rank 3 to 5 input, got shape {:?}", x.shape());
    }
    let cf = if channels_last {
        let mut perm = vec![0, rank - 1];
        perm.extend(1..rank - 1);
        x.permuted_axes(IxDyn(&perm))
    } else {
        x
    };
    let s = cf.shape();
    let mut shape = vec![s[0], s[1]];
    shape.extend(std::iter::repeat_n(1, 5 - rank));
    shape.extend(&s[2..]);
    let owned = if cf.is_standard_layout() {
        cf
    } else {
        cf.as_standard_layout().into_owned()
    };
    Ok((
        owned
            .into_shape_with_order(IxDyn(&shape))
            .expect("same size"),
        rank - 2,
    ))
}

/// Inverse of [`to_ncdhw`]: a 5-d channels-first array back to `n_spatial` spatial axes in the
/// requested layout (standard layout).
pub fn from_ncdhw(y: ArrayD<f32>, n_spatial: usize, channels_last: bool) -> ArrayD<f32> {
    let s = y.shape().to_vec();
    let mut shape = vec![s[0], s[1]];
    shape.extend(&s[5 - n_spatial..]);
    let y = y.into_shape_with_order(IxDyn(&shape)).expect("same size");
    if channels_last {
        let rank = shape.len();
        let mut perm = vec![0];
        perm.extend(2..rank);
        perm.push(1);
        y.permuted_axes(IxDyn(&perm))
            .as_standard_layout()
            .into_owned()
    } else {
        y
    }
}

/// Pads a per-spatial-axis list to 3 entries (leading `fill`s), matching [`to_ncdhw`].
pub fn pad3(v: &[i64], fill: i64) -> [i64; 3] {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

/// Takes the single input of a one-input op.
pub fn one(inputs: Vec<Value>) -> Result<Value> {
    let mut it = inputs.into_iter();
    match (it.next(), it.next()) {
        (Some(v), None) => Ok(v),
        _ => bail!("expects exactly one input"),
    }
}

/// Takes exactly `N` inputs.
pub fn take<const N: usize>(inputs: Vec<Value>) -> Result<[Value; N]> {
    let n = inputs.len();
    inputs
        .try_into()
        .map_err(|_| anyhow::anyhow!("expects {N} inputs, got {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_chunks_visits_every_item_once_with_its_index() {
        for (len, item) in [(0usize, 3usize), (3, 3), (300_000, 1), (99_999, 7)] {
            let len = len - len % item;
            let mut data = vec![0usize; len];
            par_chunks(&mut data, item, PAR_MIN_WORK, |first, chunk| {
                for (j, it) in chunk.chunks_mut(item).enumerate() {
                    it.fill(first + j + 1);
                }
            });
            for (i, v) in data.iter().enumerate() {
                assert_eq!(*v, i / item + 1);
            }
        }
    }

    #[test]
    fn map_lanes_handles_any_axis() {
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| {
            (i[0] * 100 + i[1] * 10 + i[2]) as f32
        });
        for axis in 0..3 {
            let y = map_lanes(x.view(), axis, 1, |src, dst| dst[0] = src.iter().sum());
            let want = x
                .sum_axis(ndarray::Axis(axis))
                .insert_axis(ndarray::Axis(axis));
            assert_eq!(y, want);
        }
    }
}
