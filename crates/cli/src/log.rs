//! runc's `--log` and `--log-format`: containerd and podman read the runtime's errors from that
//! file as JSON lines (`{"level":"error","msg":"…","time":"…"}`), so berth writes them the same way.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

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

pub fn init(path: Option<PathBuf>, format: Format, debug: bool) {
    let _ = SINK.set(Sink {
        path,
        format,
        debug,
    });
}

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
    // The terminal always gets errors and warnings; the log file gets them in its format.
    if level != "debug" || sink.is_some_and(|s| s.debug && s.path.is_none()) {
        eprintln!(
            "berth: {}{message}",
            if level == "warning" { "warning: " } else { "" }
        );
    }
    let Some(Sink {
        path: Some(path),
        format,
        ..
    }) = sink
    else {
        return;
    };
    let time = now();
    let line = match format {
        Format::Json => {
            serde_json::json!({ "level": level, "msg": message, "time": time }).to_string()
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={message:?}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn now() -> String {
    berth_runtime::now_rfc3339()
}
