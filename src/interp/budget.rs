//! The interpreter's memory budget: the most bytes one value may take. Before an op runs, the
//! sizes of its outputs are computed from its inputs' actual shapes by the op's shape rule, and
//! an op whose outputs would exceed the budget fails with an error naming the node, instead of
//! asking the allocator for terabytes and aborting. Graph inputs made up by `--random-input`
//! are checked the same way. The default is half the machine's memory; `--max-memory` sets it.
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicU64, Ordering};

/// 0: not set, the default applies.
static MAX_BYTES: AtomicU64 = AtomicU64::new(0);

/// When the machine's memory cannot be read.
const FALLBACK: u64 = 8 << 30;

/// Sets the budget (`--max-memory`).
pub fn set_max_bytes(bytes: u64) {
    MAX_BYTES.store(bytes.max(1), Ordering::Relaxed);
}

/// The budget in bytes.
pub fn max_bytes() -> u64 {
    match MAX_BYTES.load(Ordering::Relaxed) {
        0 => machine_memory().map_or(FALLBACK, |m| m / 2),
        set => set,
    }
}

/// MemTotal from /proc/meminfo.
fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Fails when a value of `shape` with elements of `elem_size` bytes exceeds the budget;
/// `what` names it in the message.
pub fn check(shape: &[usize], elem_size: usize, what: &str) -> Result<()> {
    check_against(shape, elem_size, what, max_bytes())
}

fn check_against(shape: &[usize], elem_size: usize, what: &str, max: u64) -> Result<()> {
    let bytes = crate::weights::checked_bytes(shape, elem_size).map(|b| b as u64);
    match bytes {
        Some(b) if b <= max => Ok(()),
        _ => bail!(
            "{what} of shape {shape:?} needs {} bytes, more than the memory budget of {max} \
             bytes (set it with --max-memory)",
            bytes.map_or("more than 2^63".to_string(), |b| b.to_string())
        ),
    }
}

/// Parses `--max-memory`: a number of bytes with an optional K, M, G or T suffix (powers of
/// 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("'{text}': the unit must be K, M, G or T")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as 4G or 512M"))?;
    n.checked_mul(1 << shift)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("'{text}' is not a usable size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_the_budget_refuses_what_exceeds_it() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("4g"), Ok(4 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("4X").is_err() && parse_size("0").is_err());
        assert!(parse_size("99999999999T").is_err());
        let mib = 1 << 20;
        assert!(check_against(&[512, 513], 4, "x", mib).is_err());
        assert!(check_against(&[512, 512], 4, "x", mib).is_ok());
        let e = check_against(&[1 << 40, 1 << 40], 4, "node 't'", mib)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node 't'") && e.contains("more than 2^63"),
            "{e}"
        );
        // Unset, the budget is half the machine's memory (or the fallback).
        assert!(max_bytes() >= mib);
    }
}
