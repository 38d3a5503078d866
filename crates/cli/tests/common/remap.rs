//! A `--userns-remap` user for a test's daemon.
#![allow(dead_code, clippy::unwrap_used)]

/// A system user with a subordinate range of its own for the test's daemon, removed (with its
/// /etc/subuid and /etc/subgid lines) when dropped.
pub struct RemapUser {
    pub name: String,
    pub start: u32,
}

impl RemapUser {
    pub fn new() -> RemapUser {
        let pid = std::process::id();
        let name = format!("brm{pid}");
        // A range far above the usual 100000+ allocations, distinct per test process.
        let start = 1_000_000_000 + (pid % 10_000) * 65_536;
        let o = std::process::Command::new("useradd")
            .args(["--system", "--user-group", "--shell", "/bin/false", &name])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for file in ["/etc/subuid", "/etc/subgid"] {
            let mut text = std::fs::read_to_string(file).unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{name}:{start}:65536\n"));
            std::fs::write(file, text).unwrap();
        }
        RemapUser { name, start }
    }
}

impl Drop for RemapUser {
    fn drop(&mut self) {
        for file in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = std::fs::read_to_string(file) {
                let prefix = format!("{}:", self.name);
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(file, kept);
            }
        }
        let _ = std::process::Command::new("userdel")
            .arg(&self.name)
            .status();
    }
}
