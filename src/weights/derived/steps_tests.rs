//! Each step against a definition computed element by element from indices.
use super::*;
use crate::weights::mapped::FileMap;

/// A u32 tensor of `shape` whose elements are distinct.
fn numbered(shape: &[usize]) -> Tensor {
    let n: u32 = shape.iter().product::<usize>() as u32;
    let bytes: Vec<u8> = (0..n)
        .flat_map(|v| v.wrapping_mul(2654435761).to_le_bytes())
        .collect();
    Tensor::new(DType::U32, shape.to_vec(), bytes).unwrap()
}

fn elements(t: &Tensor) -> Vec<u32> {
    t.data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The C-order index of `index` in `dims`.
fn flat(index: &[usize], dims: &[usize]) -> usize {
    index.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Every index of `dims`, in C order.
fn indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = dims.iter().product();
    (0..n)
        .map(|mut rem| {
            let mut idx = vec![0; dims.len()];
            for k in (0..dims.len()).rev() {
                idx[k] = rem % dims[k];
                rem /= dims[k];
            }
            idx
        })
        .collect()
}

fn one_step(step: Step, t: Tensor) -> Result<Tensor> {
    let info = step.infos(vec![t.info.clone()])?;
    let out = step.apply(vec![t])?.pop().unwrap();
    assert_eq!(vec![out.info.clone()], info, "info agrees with the result");
    Ok(out)
}

#[test]
fn reshape_keeps_the_bytes() {
    let t = numbered(&[2, 6]);
    let r = one_step(Step::Reshape(vec![3, 1, 4]), t.clone()).unwrap();
    assert_eq!(r.info.shape, vec![3, 1, 4]);
    assert_eq!(r.data.as_ptr(), t.data.as_ptr(), "no copy");
    assert!(one_step(Step::Reshape(vec![5]), t).is_err());
}

#[test]
fn reshape_to_a_shape_whose_size_overflows_is_refused() {
    // 2^40 * 2^40 wraps to 0 elements: as many as a tensor with a zero dim.
    let empty = TensorInfo {
        dtype: DType::F32,
        shape: vec![0],
    };
    let step = Step::Reshape(vec![1 << 40, 1 << 40, 1 << 40]);
    assert!(step.infos(vec![empty]).is_err());
}

#[test]
fn permute_pads_then_transposes() {
    for (shape, perm) in [
        (vec![3, 4, 5], vec![2, 0, 1]),
        (vec![3, 4, 5], vec![1, 2, 0]),
        (vec![4, 5], vec![2, 0, 1]), // padded to [1, 4, 5]
        (vec![5], vec![1, 0]),       // padded to [1, 5]
        (vec![2, 3, 1, 4], vec![3, 2, 1, 0]),
    ] {
        let t = numbered(&shape);
        let src = elements(&t);
        let mut dims = vec![1; perm.len() - shape.len()];
        dims.extend(&shape);
        let out_dims: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
        let expected: Vec<u32> = indices(&out_dims)
            .iter()
            .map(|out| {
                let mut at = vec![0; dims.len()];
                for (i, &a) in perm.iter().enumerate() {
                    at[a] = out[i];
                }
                src[flat(&at, &dims)]
            })
            .collect();
        let p = one_step(Step::Permute(perm.clone()), t).unwrap();
        assert_eq!(p.info.shape, out_dims, "{shape:?} by {perm:?}");
        assert_eq!(elements(&p), expected, "{shape:?} by {perm:?}");
    }
    // The identity keeps the bytes; perms shorter than the rank or not permutations fail.
    let t = numbered(&[3, 4]);
    let same = one_step(Step::Permute(vec![0, 1, 2]), t.clone()).unwrap();
    assert_eq!(same.info.shape, vec![1, 3, 4]);
    assert_eq!(same.data.as_ptr(), t.data.as_ptr());
    assert!(one_step(Step::Permute(vec![0]), t.clone()).is_err());
    assert!(one_step(Step::Permute(vec![0, 0]), t).is_err());
}

#[test]
fn rows_gather_axis_zero() {
    let t = numbered(&[5, 3]);
    let src = elements(&t);
    for rows in [vec![4, 0, 2, 1, 3], vec![3, 3, 0], vec![], vec![1]] {
        let expected: Vec<u32> = rows
            .iter()
            .flat_map(|&r| src[r * 3..r * 3 + 3].to_vec())
            .collect();
        let got = one_step(Step::Rows(rows.clone()), t.clone()).unwrap();
        assert_eq!(got.info.shape, vec![rows.len(), 3]);
        assert_eq!(elements(&got), expected, "rows {rows:?}");
    }
    assert!(one_step(Step::Rows(vec![5]), t).is_err());
    assert!(one_step(Step::Rows(vec![0]), numbered(&[])).is_err());
}

#[test]
fn row_permutations_in_place_match_a_copy() {
    // Permutations with fixed points, long cycles and 2-cycles (a simple LCG shuffle).
    let mut state = 12345u64;
    for n in [1usize, 2, 3, 7, 64, 1000] {
        let mut rows: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rows.swap(i, (state >> 33) as usize % (i + 1));
        }
        let row = 3;
        let data: Vec<u8> = (0..n * row).map(|i| (i % 251) as u8).collect();
        let mut in_place = data.clone();
        reorder_rows_in_place(&mut in_place, row, &rows);
        assert_eq!(in_place, reorder_rows(&data, row, &rows), "n = {n}");
        for (i, &r) in rows.iter().enumerate() {
            assert_eq!(
                in_place[i * row..(i + 1) * row],
                data[r * row..(r + 1) * row]
            );
        }
        // An owned buffer is permuted where it is.
        let owned = Bytes::from(data.clone());
        let at = owned.as_ptr();
        let got = gather_rows(owned, row, &rows);
        assert_eq!(got.as_ptr(), at, "n = {n}");
        assert_eq!(&got[..], &in_place[..]);
    }
    assert!(!is_permutation(&[0, 0]));
    assert!(!is_permutation(&[2, 0]));
    assert!(is_permutation(&[1, 2, 0]));
}

#[test]
fn rows_of_a_mapped_file_leave_the_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows");
    let t = numbered(&[300, 1000]);
    std::fs::write(&path, &t.data).unwrap();
    let map = FileMap::open(&path).unwrap();
    let mapped = Tensor::new(DType::U32, vec![300, 1000], map.bytes()).unwrap();
    let rows: Vec<usize> = (0..300).map(|i| (i * 7 + 3) % 300).collect();
    let got = one_step(Step::Rows(rows.clone()), mapped.clone()).unwrap();
    let src = elements(&t);
    let expected: Vec<u32> = rows
        .iter()
        .flat_map(|&r| src[r * 1000..(r + 1) * 1000].to_vec())
        .collect();
    assert_eq!(elements(&got), expected);
    assert_eq!(&mapped.data[..], &t.data[..]);
}

#[test]
fn gates_reorder_blocks_per_leading_index() {
    // [D = 2, G·H = 3·2, F = 3] along axis 1, and [G·H = 4·1] along axis 0.
    for (shape, axis, order) in [
        (vec![2, 6, 3], 1, vec![0, 2, 1]),
        (vec![4], 0, vec![0, 3, 1, 2]),
        (vec![2, 2, 8], 2, vec![1, 0]),
    ] {
        let t = numbered(&shape);
        let src = elements(&t);
        let h = shape[axis] / order.len();
        let expected: Vec<u32> = indices(&shape)
            .iter()
            .map(|out| {
                let mut at = out.clone();
                at[axis] = order[out[axis] / h] * h + out[axis] % h;
                src[flat(&at, &shape)]
            })
            .collect();
        let got = one_step(
            Step::Gates {
                axis,
                order: order.clone(),
            },
            t,
        )
        .unwrap();
        assert_eq!(got.info.shape, shape);
        assert_eq!(elements(&got), expected, "{shape:?} axis {axis}");
    }
    let bad = |axis, order: Vec<usize>| one_step(Step::Gates { axis, order }, numbered(&[2, 6]));
    assert!(bad(1, vec![0, 1, 2, 3]).is_err(), "6 does not split in 4");
    assert!(bad(2, vec![0]).is_err(), "no axis 2");
    assert!(bad(1, vec![]).is_err());
    assert!(bad(1, vec![0, 0]).is_err());
}

#[test]
fn stack_puts_the_sources_along_a_new_axis() {
    let (a, b) = (numbered(&[2, 3]), numbered(&[2, 3]));
    let infos = vec![a.info.clone(), b.info.clone()];
    assert_eq!(Step::Stack.infos(infos).unwrap()[0].shape, vec![2, 2, 3]);
    let s = Step::Stack.apply(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].info.shape, vec![2, 2, 3]);
    assert_eq!(elements(&s[0]), [elements(&a), elements(&b)].concat());
    // One source: a view of its bytes.
    let one = Step::Stack.apply(vec![a.clone()]).unwrap();
    assert_eq!(one[0].info.shape, vec![1, 2, 3]);
    assert_eq!(one[0].data.as_ptr(), a.data.as_ptr());
    assert!(Step::Stack.apply(vec![a, numbered(&[3, 2])]).is_err());
    assert!(Step::Stack.apply(vec![]).is_err());
}

#[test]
fn steps_before_a_stack_apply_to_each_source() {
    let (a, b) = (numbered(&[2, 3]), numbered(&[2, 3]));
    let out = Step::Permute(vec![1, 0])
        .apply(vec![a.clone(), b.clone()])
        .unwrap();
    assert_eq!(out.len(), 2);
    for (got, src) in out.iter().zip([&a, &b]) {
        let s = elements(src);
        assert_eq!(elements(got), vec![s[0], s[3], s[1], s[4], s[2], s[5]]);
    }
}

#[test]
fn cast_and_dequantize_change_the_element_type() {
    let t = Tensor::new(DType::I8, vec![2, 2], vec![0xfe, 1, 2, 0x80]).unwrap();
    let c = one_step(Step::Cast(DType::I32), t.clone()).unwrap();
    let values: Vec<i32> = c
        .data
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, vec![-2, 1, 2, -128]);
    assert!(
        one_step(Step::Cast(DType::U8), t.clone()).is_err(),
        "-2 is no u8"
    );
    let d = one_step(
        Step::Dequantize {
            scale: vec![0.5, 2.0],
            zero_point: vec![0, 1],
            axis: 0,
        },
        t,
    )
    .unwrap();
    assert_eq!(d.info.dtype, DType::F32);
    assert_eq!(d.to_f32(), vec![-1.0, 0.5, 2.0, -258.0]);
    let f = Tensor::from_f32(vec![1], &[1.5]).unwrap();
    assert!(Step::Cast(DType::I64).infos(vec![f.info]).is_err());
}
