//! Image hygiene: what makes an image larger, staler or less safe than it needs to be, found
//! in the Dockerfile (unpinned bases, `apt-get update` on its own, caches left behind) and in
//! the image's layers (bytes shipped but never seen, secret-looking files, root).

mod analyze;
mod lint;

pub use analyze::{analyze, Analysis, Change, LayerReport, Waste};
pub use lint::{lint_dockerfile, lint_image, lint_layers};

use serde::Serialize;

/// One finding.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// A short stable name of the rule, e.g. `from-latest`.
    #[serde(rename = "Rule")]
    pub rule: String,
    /// `warning` or `info`.
    #[serde(rename = "Severity")]
    pub severity: String,
    /// The Dockerfile line, for a Dockerfile finding.
    #[serde(rename = "Line", skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(rename = "Message")]
    pub message: String,
    /// Bytes concerned (wasted, cache), where that applies.
    #[serde(rename = "Bytes", skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl Finding {
    pub(crate) fn new(rule: &str, severity: &str, line: Option<usize>, message: String) -> Finding {
        Finding {
            rule: rule.to_string(),
            severity: severity.to_string(),
            line,
            message,
            bytes: None,
        }
    }

    pub(crate) fn bytes(mut self, n: u64) -> Finding {
        self.bytes = Some(n);
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        write!(f, "{} [{}]", self.message, self.rule)
    }
}

/// Bytes as docker shows sizes (`2.1MB`, decimal units).
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[u]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(999), "999B");
        assert_eq!(human(2_097_152), "2.097MB");
        assert_eq!(human(1_500_000_000), "1.5GB");
    }
}
