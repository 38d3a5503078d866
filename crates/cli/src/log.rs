//! runc's `--log`, `--log-format` and `--debug`, in runc's own forms: containerd and podman read
//! the runtime's errors from the log file as JSON lines (`{"level":"error","msg":"…","time":"…"}`),
//! and scripts read runc's stderr, logrus's text lines (`time="…" level=error msg="…"`).
//!
//! As with runc: without `--log`, every message goes to stderr as a text line; with `--log`,
//! messages go to that file in its format, and a fatal error is also printed plainly on stderr.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug)]
struct Sink {
    path: Option<PathBuf>,
    format: Format,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();
static STARTED: OnceLock<Instant> = OnceLock::new();

pub fn init(path: Option<PathBuf>, format: Format, debug: bool) {
    let _ = STARTED.set(Instant::now());
    let _ = SINK.set(Sink {
        path,
        format,
        debug,
    });
}

/// The error that ends the command: logged, and printed on stderr when the log is a file.
pub fn fatal(message: &str) {
    write("error", message);
    if SINK.get().is_some_and(|s| s.path.is_some()) {
        eprintln!("{message}");
    }
}

/// An error that does not end the command (a failed poststop hook).
pub fn error(message: &str) {
    write("error", message);
}

pub fn warn(message: &str) {
    write("warning", message);
}

/// Debug messages are built only when --debug is on: the runtime's commands are a hot path.
pub fn debug(message: impl FnOnce() -> String) {
    if SINK.get().is_some_and(|s| s.debug) {
        write("debug", &message());
    }
}

fn write(level: &str, message: &str) {
    let sink = SINK.get();
    let format = sink.map_or(Format::Text, |s| s.format);
    match sink.and_then(|s| s.path.as_ref()) {
        Some(path) => {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = f.write_all(line(format, level, message, &now()).as_bytes());
            }
        }
        // Without --log, runc's logrus writes text to stderr whatever --log-format says: in
        // colour, with the seconds since start, when stderr is a terminal.
        None => {
            let mut err = std::io::stderr();
            let text = if err.is_terminal() {
                let since = STARTED.get().map_or(0, |t| t.elapsed().as_secs());
                coloured_line(level, message, since)
            } else {
                line(Format::Text, level, message, &now())
            };
            let _ = err.write_all(text.as_bytes());
        }
    }
}

/// One log line, newline included.
fn line(format: Format, level: &str, message: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let mut text =
                serde_json::json!({ "level": level, "msg": message, "time": time }).to_string();
            text.push('\n');
            text
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={}\n", quote(message)),
    }
}

/// logrus's text line for a terminal: `ERRO[0000] message` with the level in colour.
fn coloured_line(level: &str, message: &str, since: u64) -> String {
    let (text, colour) = match level {
        "error" => ("ERRO", 31),
        "warning" => ("WARN", 33),
        "debug" => ("DEBU", 37),
        _ => ("INFO", 36),
    };
    format!("\x1b[{colour}m{text}\x1b[0m[{since:04}] {message:<44} \n")
}

/// logrus quotes a value unless it is made of plain characters only.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/@^+".contains(&b));
    if plain {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// RFC 3339 in UTC to the second, as logrus stamps runc's lines.
fn now() -> String {
    let full = berth_runtime::now_rfc3339();
    match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_look_like_logrus() {
        assert_eq!(
            line(Format::Text, "error", "container does not exist", "T"),
            "time=\"T\" level=error msg=\"container does not exist\"\n"
        );
        assert_eq!(
            line(Format::Text, "debug", "plain", "T"),
            "time=\"T\" level=debug msg=plain\n"
        );
        assert_eq!(quote("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
        assert_eq!(
            line(Format::Json, "error", "x", "T"),
            "{\"level\":\"error\",\"msg\":\"x\",\"time\":\"T\"}\n"
        );
        assert!(now().ends_with('Z') && !now().contains('.'), "{}", now());
        assert_eq!(
            coloured_line("error", "x", 3),
            format!("\x1b[31mERRO\x1b[0m[0003] x{} \n", " ".repeat(43))
        );
    }
}
