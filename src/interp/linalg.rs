//! Matrix products: f32 GEMM through `ndarray` (`matrixmultiply`), split across threads.
use super::util::threads;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// `c = a · b + beta · c`, split over the larger of c's two dimensions across threads when the
/// product is large enough to pay for it.
pub fn gemm(a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, mut c: ArrayViewMut2<f32>) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    let t = threads();
    if t == 1 || m * n * k < 1 << 18 || (m < 16 && n < 16) {
        general_mat_mul(1.0, &a, &b, beta, &mut c);
        return;
    }
    let split_n = n >= m;
    let len = if split_n { n } else { m };
    let parts = t.min(len.div_ceil(8)).max(1);
    // Chunk boundaries rounded to multiples of 8 so every chunk keeps full kernel tiles.
    let per = len.div_ceil(parts).div_ceil(8) * 8;
    std::thread::scope(|s| {
        let mut rest_c = c.view_mut();
        let mut rest_a = a;
        let mut rest_b = b;
        let mut handles = Vec::new();
        loop {
            let remaining = if split_n {
                rest_c.dim().1
            } else {
                rest_c.dim().0
            };
            if remaining <= per {
                general_mat_mul(1.0, &rest_a, &rest_b, beta, &mut rest_c);
                break;
            }
            let (mut head_c, tail_c) = if split_n {
                rest_c.split_at(Axis(1), per)
            } else {
                rest_c.split_at(Axis(0), per)
            };
            let (head_a, head_b);
            if split_n {
                let (hb, tb) = rest_b.split_at(Axis(1), per);
                head_a = rest_a;
                head_b = hb;
                rest_b = tb;
            } else {
                let (ha, ta) = rest_a.split_at(Axis(0), per);
                head_a = ha;
                head_b = rest_b;
                rest_a = ta;
            }
            handles.push(s.spawn(move || {
                general_mat_mul(1.0, &head_a, &head_b, beta, &mut head_c);
            }));
            rest_c = tail_c;
        }
        for h in handles {
            h.join().expect("GEMM worker panicked");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn split_gemm_matches_plain_product() {
        for &(m, k, n) in &[(3, 5, 7), (70, 90, 130), (300, 40, 20), (17, 64, 1000)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f32 - 6.0);
            let want = a.dot(&b);
            let mut c = Array2::from_elem((m, n), 1.0f32);
            gemm(a.view(), b.view(), 0.0, c.view_mut());
            assert_eq!(c, want);
            let mut c2 = Array2::from_elem((m, n), 1.0f32);
            gemm(a.view(), b.view(), 1.0, c2.view_mut());
            assert_eq!(c2, want + 1.0);
        }
    }
}
