//! The layout pass: unit tests of its rewrites, and the property test that a converted graph
//! computes exactly what the source graph computes (inputs and outputs transposed as reported),
//! on random graphs of layout-relevant ops, in both directions.
mod builder;
mod common;
mod random;
mod rewrites;
