//! The property test: random graphs converted in both directions compute exactly what the
//! source computes, and converting back gives the source again.
use crate::builder::random_graph;
use crate::common::{compare, describe, random_inputs, transpose, transposes};
use mmdnn::ir::passes::layout::{convert_layout, Target};
use mmdnn::ir::validate;
use ndarray::ArrayD;

#[test]
fn random_graphs_convert_exactly_both_ways() {
    const GRAPHS: u64 = 1000;
    let mut checked = 0;
    let mut inserted = 0;
    let mut round_trips = 0;
    for seed in 0..GRAPHS {
        for last in [false, true] {
            let seed = seed * 2 + last as u64;
            let (mut g, w, batch) = random_graph(seed, last);
            validate::check(&mut g, Some(&w))
                .unwrap_or_else(|e| panic!("seed {seed}: generator made an invalid graph: {e:#}"));
            let target = if last {
                Target::ChannelsFirst
            } else {
                Target::ChannelsLast
            };
            let keep_io = seed % 3 == 0;
            let res = convert_layout(&g, &w, target, keep_io)
                .unwrap_or_else(|e| panic!("seed {seed}: {e:#}\n{}", describe(&g)));
            let mut check = res.graph.clone();
            validate::check(&mut check, Some(&res.weights))
                .unwrap_or_else(|e| panic!("seed {seed}: converted graph invalid: {e:#}"));
            if keep_io {
                assert!(res
                    .input_perms
                    .iter()
                    .chain(&res.output_perms)
                    .all(Option::is_none));
            }
            let feeds = random_inputs(&g, batch, seed);
            let err = compare(&g, &w, &res, &feeds);
            assert!(
                err <= 1e-5,
                "seed {seed} ({} → {}, keep_io {keep_io}): error {err}\nsource:\n{}\nconverted:\n{}\nlog:\n  {}",
                if last { "channels_last" } else { "channels_first" },
                target.data_format(),
                describe(&g),
                describe(&res.graph),
                res.log.join("\n  ")
            );
            inserted += transposes(&res.graph).saturating_sub(transposes(&g));
            checked += 1;
            if seed % 10 == 0 {
                // Converting back (weights transformed twice, lazily) gives the source again.
                let back_target = if last {
                    Target::ChannelsLast
                } else {
                    Target::ChannelsFirst
                };
                let back = convert_layout(&res.graph, &res.weights, back_target, true).unwrap();
                let feeds2: Vec<(String, ArrayD<f32>)> = feeds
                    .iter()
                    .zip(&res.input_perms)
                    .map(|((n, a), p)| {
                        (n.clone(), p.as_ref().map_or(a.clone(), |p| transpose(a, p)))
                    })
                    .collect();
                let err = compare(&res.graph, &res.weights, &back, &feeds2);
                assert!(err <= 1e-5, "seed {seed}: round trip error {err}");
                round_trips += 1;
            }
        }
    }
    eprintln!(
        "{checked} random graphs converted exactly ({round_trips} also converted back); \
         {inserted} Transposes inserted in all"
    );
    assert!(checked >= 1000);
}
