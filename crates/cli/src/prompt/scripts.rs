//! The completion scripts `berth completion SHELL` prints. They are thin: each passes the
//! words to `berth __complete` and shows what comes back (`complete.rs` has the protocol),
//! so every shell completes the same things from the same definitions.

/// The script for `shell` (one of `crate::tree::SHELLS`).
pub fn script(shell: &str) -> Option<&'static str> {
    match shell {
        "bash" => Some(include_str!("scripts/berth.bash")),
        "zsh" => Some(include_str!("scripts/berth.zsh")),
        "fish" => Some(include_str!("scripts/berth.fish")),
        _ => None,
    }
}
