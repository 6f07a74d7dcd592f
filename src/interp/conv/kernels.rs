//! The inner loops of Conv: the direct depthwise convolution and the im2col fills of the GEMM
//! form, over the 3-d view of [`super::Geom`].
use super::{valid_range, Geom};
use crate::interp::util::par_chunks;

/// Direct depthwise convolution (group = input channels, `cout / cin` outputs per channel):
/// cheaper than one tiny GEMM per channel.
pub(super) struct Depthwise<'a> {
    pub cin: usize,
    pub cout: usize,
    pub ins: [usize; 3],
    pub outs: [usize; 3],
    pub g: &'a Geom,
}

impl Depthwise<'_> {
    /// channels_first: weights [cout, 1, *k]; parallel over output channel planes.
    pub fn run_cf(&self, x: &[f32], w: &[f32], y: &mut [f32]) {
        let g = self.g;
        let (ksize, mult) = (g.kernel_size(), self.cout / self.cin);
        let p_in: usize = self.ins.iter().product();
        let p_out: usize = self.outs.iter().product();
        let [_, ih, iw] = self.ins;
        let [_, oh, ow] = self.outs;
        let ranges = |off: [i64; 3]| -> [(usize, usize); 3] {
            std::array::from_fn(|a| {
                valid_range(
                    g.pad_begin[a],
                    off[a] * g.dilations[a],
                    g.strides[a],
                    self.ins[a],
                    self.outs[a],
                )
            })
        };
        par_chunks(y, p_out, self.cout * p_out * ksize, |first, planes| {
            for (j, plane) in planes.chunks_mut(p_out).enumerate() {
                let o = first + j;
                let xc = &x[(o / mult) * p_in..(o / mult + 1) * p_in];
                for t in 0..ksize {
                    let wv = w[o * ksize + t];
                    let off = g.tap(t);
                    let [rd, rh, rw] = ranges(off);
                    let shift = off[2] * g.dilations[2] - g.pad_begin[2];
                    for od in rd.0..rd.1 {
                        let id =
                            od as i64 * g.strides[0] - g.pad_begin[0] + off[0] * g.dilations[0];
                        for ohi in rh.0..rh.1 {
                            let hh = ohi as i64 * g.strides[1] - g.pad_begin[1]
                                + off[1] * g.dilations[1];
                            let src = &xc[(id as usize * ih + hh as usize) * iw..][..iw];
                            let dst = &mut plane[(od * oh + ohi) * ow..][..ow];
                            for owi in rw.0..rw.1 {
                                dst[owi] += wv * src[(owi as i64 * g.strides[2] + shift) as usize];
                            }
                        }
                    }
                }
            }
        });
    }

    /// channels_last: weights [*k, 1, cout]; parallel over output positions.
    pub fn run_cl(&self, x: &[f32], w: &[f32], y: &mut [f32]) {
        let g = self.g;
        let (ksize, mult, cin, cout) = (g.kernel_size(), self.cout / self.cin, self.cin, self.cout);
        let [_, ih, iw] = self.ins;
        let [_, oh, ow] = self.outs;
        par_chunks(y, cout, y.len() * ksize, |first, rows| {
            for (r, out) in rows.chunks_mut(cout).enumerate() {
                let p = first + r;
                let o = [p / (oh * ow), (p / ow) % oh, p % ow];
                for t in 0..ksize {
                    let off = g.tap(t);
                    let mut pos = [0usize; 3];
                    let mut inside = true;
                    for a in 0..3 {
                        let v =
                            o[a] as i64 * g.strides[a] - g.pad_begin[a] + off[a] * g.dilations[a];
                        inside &= v >= 0 && (v as usize) < self.ins[a];
                        pos[a] = v.max(0) as usize;
                    }
                    if !inside {
                        continue;
                    }
                    let src = &x[((pos[0] * ih + pos[1]) * iw + pos[2]) * cin..][..cin];
                    let wt = &w[t * cout..(t + 1) * cout];
                    if mult == 1 {
                        for ((d, &s), &k) in out.iter_mut().zip(src).zip(wt) {
                            *d += s * k;
                        }
                    } else {
                        for (c, &s) in src.iter().enumerate() {
                            for m in 0..mult {
                                out[c * mult + m] += s * wt[c * mult + m];
                            }
                        }
                    }
                }
            }
        });
    }
}

/// im2col for channels_first: fills `col` [K, p1 − p0] (K = channel, then kernel taps) with
/// the input values each output position in [p0, p1) reads.
#[allow(clippy::too_many_arguments)]
pub(super) fn im2col_cf(
    x: &[f32],
    cin: usize,
    ins: [usize; 3],
    outs: [usize; 3],
    g: &Geom,
    p0: usize,
    p1: usize,
    col: &mut [f32],
) {
    let width = p1 - p0;
    let ksize = g.kernel_size();
    let [_, ih, iw] = ins;
    let [_, oh, ow] = outs;
    let p_in: usize = ins.iter().product();
    par_chunks(col, width, cin * ksize * width, |first, rows| {
        for (r, row) in rows.chunks_mut(width).enumerate() {
            let k = first + r;
            let (c, t) = (k / ksize, k % ksize);
            let off = g.tap(t);
            let xc = &x[c * p_in..(c + 1) * p_in];
            let d_rng = valid_range(
                g.pad_begin[0],
                off[0] * g.dilations[0],
                g.strides[0],
                ins[0],
                outs[0],
            );
            let h_rng = valid_range(
                g.pad_begin[1],
                off[1] * g.dilations[1],
                g.strides[1],
                ih,
                oh,
            );
            let w_rng = valid_range(
                g.pad_begin[2],
                off[2] * g.dilations[2],
                g.strides[2],
                iw,
                ow,
            );
            // Walk output rows (od, oh) that intersect [p0, p1).
            let mut p = p0;
            while p < p1 {
                let q = p / ow; // row index od·oh + oh
                let row_end = ((q + 1) * ow).min(p1);
                let (od_i, oh_i) = (q / oh, q % oh);
                let dst = &mut row[p - p0..row_end - p0];
                let w0 = p - q * ow;
                let inside = od_i >= d_rng.0 && od_i < d_rng.1 && oh_i >= h_rng.0 && oh_i < h_rng.1;
                if !inside {
                    dst.fill(0.0);
                } else {
                    let id = od_i as i64 * g.strides[0] - g.pad_begin[0] + off[0] * g.dilations[0];
                    let hh = oh_i as i64 * g.strides[1] - g.pad_begin[1] + off[1] * g.dilations[1];
                    let base = (id as usize * ih + hh as usize) * iw;
                    let src = &xc[base..base + iw];
                    let sw = g.strides[2] as usize;
                    let shift = off[2] * g.dilations[2] - g.pad_begin[2];
                    // Output columns [w0, w0 + len) split into zeros, inside, zeros.
                    let len = dst.len();
                    let lo = w_rng.0.clamp(w0, w0 + len) - w0;
                    let hi = w_rng.1.clamp(w0, w0 + len) - w0;
                    dst[..lo].fill(0.0);
                    dst[hi.max(lo)..].fill(0.0);
                    if hi > lo {
                        let first = ((w0 + lo) as i64 * sw as i64 + shift) as usize;
                        let inside = &mut dst[lo..hi];
                        if sw == 1 {
                            inside.copy_from_slice(&src[first..first + inside.len()]);
                        } else {
                            for (v, s) in inside.iter_mut().zip(src[first..].iter().step_by(sw)) {
                                *v = *s;
                            }
                        }
                    }
                }
                p = row_end;
            }
        }
    });
}

/// im2col for channels_last: fills `col` [P, K] (K = channels, then kernel taps) for output
/// positions starting at `p0`, reading channels [c0, c0 + cg) of an input with `cin` channels.
#[allow(clippy::too_many_arguments)]
pub(super) fn im2col_cl(
    x: &[f32],
    cin: usize,
    c0: usize,
    cg: usize,
    ins: [usize; 3],
    outs: [usize; 3],
    g: &Geom,
    p0: usize,
    col: &mut [f32],
) {
    let ksize = g.kernel_size();
    let kk = ksize * cg;
    let [_, ih_n, iw_n] = ins;
    let [_, oh, ow] = outs;
    par_chunks(col, kk, col.len(), |first, rows| {
        for (r, row) in rows.chunks_mut(kk).enumerate() {
            let p = p0 + first + r;
            let o = [p / (oh * ow), (p / ow) % oh, p % ow];
            for t in 0..ksize {
                let off = g.tap(t);
                let mut pos = [0i64; 3];
                let mut inside = true;
                for a in 0..3 {
                    pos[a] = o[a] as i64 * g.strides[a] - g.pad_begin[a] + off[a] * g.dilations[a];
                    inside &= pos[a] >= 0 && (pos[a] as usize) < ins[a];
                }
                if inside {
                    let idx = ((pos[0] as usize * ih_n + pos[1] as usize) * iw_n + pos[2] as usize)
                        * cin
                        + c0;
                    for (c, &v) in x[idx..idx + cg].iter().enumerate() {
                        row[c * ksize + t] = v;
                    }
                } else {
                    for c in 0..cg {
                        row[c * ksize + t] = 0.0;
                    }
                }
            }
        }
    });
}
