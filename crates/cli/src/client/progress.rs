//! Docker's JSON message display (pull, push, load, import, build): on a terminal each
//! layer keeps its own line, redrawn in place with cursor moves as its bar advances; off a
//! terminal bars are left out and each step prints one line — as the docker CLI's
//! `jsonmessage.DisplayJSONMessagesStream`.

use std::collections::HashMap;
use std::io::Write;

use serde_json::Value;

use super::units::human_size;

/// The state of one display: which id owns which line above the cursor.
#[derive(Debug, Default)]
pub struct Display {
    tty: bool,
    width: u16,
    ids: HashMap<String, usize>,
}

impl Display {
    pub fn new(tty: bool) -> Display {
        let width = if tty {
            super::stream::terminal_size().map_or(200, |(_, c)| c)
        } else {
            0
        };
        Display {
            tty,
            width,
            ids: HashMap::new(),
        }
    }

    /// Shows one message (errors are the caller's business).
    pub fn show(&mut self, m: &Value, out: &mut dyn Write) -> std::io::Result<()> {
        let id = m["id"].as_str().unwrap_or("");
        let has_progress = m.get("progressDetail").is_some_and(Value::is_object);
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let line = match self.ids.get(id) {
                Some(l) => *l,
                None => {
                    let l = self.ids.len();
                    self.ids.insert(id.to_string(), l);
                    if self.tty {
                        writeln!(out)?;
                    }
                    l
                }
            };
            diff = self.ids.len() - line;
            if self.tty {
                write!(out, "\x1b[{diff}A")?;
            }
        } else {
            // Lines that are not a layer's end the block of lines being redrawn.
            self.ids.clear();
        }
        let bar = progress(&m["progressDetail"], self.width);
        let endl = if self.tty && has_progress && m["stream"].is_null() {
            write!(out, "\x1b[2K\r")?;
            "\r"
        } else if !bar.is_empty() {
            // No bars off a terminal.
            return Ok(());
        } else {
            ""
        };
        if !id.is_empty() {
            write!(out, "{id}: ")?;
        }
        let status = m["status"].as_str().unwrap_or("");
        if let Some(s) = m["stream"].as_str() {
            write!(out, "{s}{endl}")?;
        } else if self.tty && has_progress {
            write!(out, "{status} {bar}{endl}")?;
        } else {
            writeln!(out, "{status}{endl}")?;
        }
        if !id.is_empty() && self.tty && diff > 0 {
            write!(out, "\x1b[{diff}B")?;
        }
        out.flush()
    }
}

/// `[=====>    ]  1.2MB/3.4MB` (the bar only on terminals wider than 110 columns).
fn progress(detail: &Value, width: u16) -> String {
    let current = detail["current"].as_u64().unwrap_or(0);
    let total = detail["total"].as_u64().unwrap_or(0);
    if current == 0 && total == 0 {
        return String::new();
    }
    if total == 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    let mut s = String::new();
    if width > 110 {
        s = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    }
    if current <= total {
        s.push_str(&format!(
            "{:>8}/{}",
            human_size(current as f64),
            human_size(total as f64)
        ));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(tty: bool, msgs: &[Value]) -> String {
        let mut d = Display {
            tty,
            width: 200,
            ids: HashMap::new(),
        };
        let mut out = Vec::new();
        for m in msgs {
            d.show(m, &mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn off_a_terminal_each_step_is_a_line_and_bars_are_left_out() {
        let s = render(
            false,
            &[
                json!({"status": "Pulling from library/busybox", "id": "latest"}),
                json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"}),
                json!({"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": "abc"}),
                json!({"status": "Pull complete", "progressDetail": {}, "id": "abc"}),
                json!({"status": "Digest: sha256:x"}),
            ],
        );
        assert_eq!(
            s,
            "latest: Pulling from library/busybox\nabc: Pulling fs layer\nabc: Pull complete\nDigest: sha256:x\n"
        );
    }

    #[test]
    fn on_a_terminal_a_layer_redraws_its_own_line() {
        let s = render(
            true,
            &[
                json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "a"}),
                json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "b"}),
                json!({"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": "a"}),
            ],
        );
        // a's line is two up from the cursor once b was added.
        assert!(
            s.contains("\x1b[2A\x1b[2K\ra: Downloading [========================="),
            "{s:?}"
        );
        assert!(s.ends_with("5B/10B\r\x1b[2B"), "{s:?}");
    }
}
