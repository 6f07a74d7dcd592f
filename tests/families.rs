//! One family naming: an op is found by its family's file name in every stage (`grep -l` of
//! the family finds all of them). The catalogue says each op's family (`Family::name` is the
//! file name); these tests check that
//! - the interpreter implements every op in exactly `src/interp/<family>.rs`,
//! - the ONNX writer lowers each op it supports in exactly `src/backends/onnx/ops/<family>.rs`,
//! - every file of a stage's op directory is named for a catalogue family, or is one of the
//!   few modules listed for that directory in [`STAGES`].
//!
//! The registries are keyed by `stringify!` of their modules, so a name cannot drift from its
//! file. That each catalogue entry sits in `src/ir/ops/<family>.rs` is the unit test
//! `ir::ops::tests::every_op_is_declared_in_its_family_file`.
use mmdnn::ir::ops;
use std::collections::BTreeSet;
use std::path::Path;

/// A stage's op directory and the modules allowed there besides the families.
struct Stage {
    dir: &'static str,
    others: &'static [&'static str],
}

/// The op directories of the stages.
const STAGES: &[Stage] = &[
    Stage {
        dir: "src/ir/ops",
        // Shape arithmetic shared by the shape rules and the other stages, and the shape rules
        // of ops whose shape-like attributes are run-time tensors.
        others: &["shape_rules", "runtime_rules"],
    },
    Stage {
        dir: "src/interp",
        // Value helpers (threads, lanes, layouts), the GEMM of convolutions and products, the
        // memory budget every op is checked against, symbolic dims bound at run time, and
        // attributes read from run-time tensors.
        others: &["util", "linalg", "budget", "symbols", "runtime_attrs"],
    },
    Stage {
        dir: "src/frontends/onnx/ops",
        // ONNX's quantization ops, and GatherElements (Gather on the flattened data at computed
        // flat indices), decomposed into IR ops of other families.
        others: &["quant", "gather_elements"],
    },
    Stage {
        dir: "src/backends/onnx/ops",
        others: &[],
    },
    Stage {
        dir: "src/backends/pytorch/ops",
        // The snapshot tests of the generated code, one file per family.
        others: &["tests"],
    },
    Stage {
        dir: "src/frontends/keras/layers",
        // MultiHeadAttention (decomposed into dense, shape and activation ops), and the
        // recorded TF function calls and Keras 3 operations (one table for every family).
        others: &["attention", "op_calls"],
    },
];

fn families() -> BTreeSet<&'static str> {
    ops::all().iter().map(|op| op.family.name()).collect()
}

/// Module names (file stems and directory names, `mod.rs` excluded) in a directory.
fn modules(dir: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()))
        .map(|entry| {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                return Some(name);
            }
            name.strip_suffix(".rs").map(str::to_string)
        })
        .filter_map(|name| name.filter(|n| n != "mod"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_interpreter_implements_each_op_in_its_family_file() {
    let wrong: Vec<String> = ops::all()
        .iter()
        .filter_map(|op| {
            let files = mmdnn::interp::registering_files(op.name);
            (files != [op.family.name()]).then(|| {
                format!(
                    "{} (family {}) is implemented in {files:?}",
                    op.name,
                    op.family.name()
                )
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "each op must be implemented in exactly src/interp/<family>.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_onnx_writer_lowers_each_op_in_its_family_file() {
    let wrong: Vec<String> = ops::all()
        .iter()
        .filter_map(|op| {
            let files = mmdnn::backends::onnx::lowering_files(op.name);
            (!files.is_empty() && files != [op.family.name()]).then(|| {
                format!(
                    "{} (family {}) is lowered in {files:?}",
                    op.name,
                    op.family.name()
                )
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "an op the ONNX writer supports must be lowered in exactly \
         src/backends/onnx/ops/<family>.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_family_has_its_catalogue_and_interpreter_file() {
    for family in families() {
        for dir in ["src/ir/ops", "src/interp"] {
            assert!(
                modules(dir).iter().any(|m| m == family),
                "family {family} has no {dir}/{family}.rs"
            );
        }
    }
}

#[test]
fn stage_files_are_named_for_families() {
    let families = families();
    let mut wrong = vec![];
    for stage in STAGES {
        let found = modules(stage.dir);
        for module in &found {
            if !families.contains(module.as_str()) && !stage.others.contains(&module.as_str()) {
                wrong.push(format!("{}/{module} is named for no family", stage.dir));
            }
        }
        for name in stage.others {
            if families.contains(name) || !found.iter().any(|m| m == name) {
                wrong.push(format!(
                    "{}/{name} is listed as a module besides the families, but it is a family \
                     or has no file",
                    stage.dir
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "name each op file for its catalogue family ({families:?}), or list it, with the \
         reason, in STAGES of tests/families.rs:\n{}",
        wrong.join("\n")
    );
}
