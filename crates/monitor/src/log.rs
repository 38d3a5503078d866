//! Docker's json-file log driver: one JSON object per line, rotated by size into `path.1` ...
//! With [`LogFormat::Cri`] the same lines in the CRI's format, at the path kubelet chose.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{LogConfig, LogFormat};
use crate::error::{Error, Result};

/// Docker's copier splits lines at 16 KiB: a longer line is logged in pieces.
const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

#[derive(Debug)]
pub(crate) struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    format: LogFormat,
    /// The unfinished line of each stream; they stay empty (no allocation) for line output.
    partial: [Vec<u8>; 2],
    scratch: Vec<u8>,
}

impl JsonLog {
    pub(crate) fn open(cfg: &LogConfig) -> Result<JsonLog> {
        if let Some(parent) = cfg.path.parent() {
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o700,
            )
            .create(parent)
            .map_err(|e| Error::file("create", parent, e))?;
        }
        let file = open_append(&cfg.path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            path: cfg.path.clone(),
            file,
            size,
            max_size: cfg.max_size.filter(|&m| m > 0),
            max_files: cfg.max_files.max(1),
            format: cfg.format,
            partial: [Vec::new(), Vec::new()],
            scratch: Vec::new(),
        })
    }

    /// Logs `data`, which continues whatever this stream wrote before.
    pub(crate) fn write(&mut self, stream: Stream, mut data: &[u8]) {
        let idx = stream as usize;
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(nl + 1);
            if self.partial[idx].is_empty() {
                self.entry(stream, line);
            } else {
                let mut buf = std::mem::take(&mut self.partial[idx]);
                buf.extend_from_slice(line);
                self.entry(stream, &buf);
                buf.clear();
                self.partial[idx] = buf;
            }
            data = rest;
        }
        self.partial[idx].extend_from_slice(data);
        if self.partial[idx].len() >= MAX_LINE {
            self.flush(stream);
        }
    }

    /// Logs the stream's unfinished line as it is (the stream ended or the line is too long).
    pub(crate) fn flush(&mut self, stream: Stream) {
        let idx = stream as usize;
        if !self.partial[idx].is_empty() {
            let buf = std::mem::take(&mut self.partial[idx]);
            self.entry(stream, &buf);
            // Give the memory back: a monitor spends most of its life idle.
            self.partial[idx] = Vec::new();
        }
    }

    /// Reopens the file at its path (kubelet's ReopenContainerLog, after it rotated the file
    /// away).
    pub(crate) fn reopen(&mut self) -> Result<()> {
        self.file = open_append(&self.path)?;
        self.size = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(())
    }

    fn entry(&mut self, stream: Stream, line: &[u8]) {
        let time = berth_runtime::now_rfc3339();
        self.scratch.clear();
        match self.format {
            LogFormat::JsonFile => {
                let text = String::from_utf8_lossy(line);
                let entry = Entry {
                    log: &text,
                    stream: stream.name(),
                    time: &time,
                };
                if serde_json::to_writer(&mut self.scratch, &entry).is_err() {
                    return;
                }
            }
            LogFormat::Cri => {
                // The line's own newline ends the record; a piece without one is partial.
                let (text, tag) = match line.strip_suffix(b"\n") {
                    Some(text) => (text, b'F'),
                    None => (line, b'P'),
                };
                self.scratch.extend_from_slice(time.as_bytes());
                self.scratch.push(b' ');
                self.scratch.extend_from_slice(stream.name().as_bytes());
                self.scratch.push(b' ');
                self.scratch.push(tag);
                self.scratch.push(b' ');
                self.scratch.extend_from_slice(text);
            }
        }
        self.scratch.push(b'\n');
        if let Some(max) = self.max_size {
            // As Docker: rotate before the write that finds the file at or over its cap.
            if self.size >= max {
                self.rotate();
            }
        }
        // A full disk loses log lines but must not stop the container's output from flowing.
        if self.file.write_all(&self.scratch).is_ok() {
            self.size += self.scratch.len() as u64;
        }
        if self.scratch.capacity() > 64 * 1024 {
            self.scratch = Vec::new();
        }
    }

    fn rotate(&mut self) {
        let numbered = |n: u32| {
            let mut p = self.path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.max_files > 1 {
            for n in (1..self.max_files - 1).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            let _ = std::fs::rename(&self.path, numbered(1));
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Ok(file) = open_append(&self.path) {
            self.file = file;
            self.size = 0;
        }
    }
}

/// The log holds the container's output: root's alone (0600), as dockerd keeps its logs.
fn open_append(path: &Path) -> Result<File> {
    std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().create(true).append(true),
        0o600,
    )
    .open(path)
    .map_err(|e| Error::file("open log", path, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_split_join_and_flush_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = JsonLog::open(&LogConfig {
            path: path.clone(),
            max_size: None,
            max_files: 1,
            disabled: false,
            format: LogFormat::JsonFile,
        })
        .unwrap();
        log.write(Stream::Stdout, b"one\ntw");
        log.write(Stream::Stderr, b"err\n");
        log.write(Stream::Stdout, b"o\nend");
        log.flush(Stream::Stdout);
        let got = lines(&path);
        let logs: Vec<_> = got
            .iter()
            .map(|v| (v["stream"].as_str().unwrap(), v["log"].as_str().unwrap()))
            .collect();
        assert_eq!(
            logs,
            [
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n"),
                ("stdout", "end")
            ]
        );
        let time = got[0]["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = JsonLog::open(&LogConfig {
            path: path.clone(),
            max_size: Some(200),
            max_files: 3,
            disabled: false,
            format: LogFormat::JsonFile,
        })
        .unwrap();
        for i in 0..40 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        assert!(path.exists());
        assert!(dir.path().join("c.log.1").exists());
        assert!(dir.path().join("c.log.2").exists());
        assert!(!dir.path().join("c.log.3").exists());
        let last = lines(&path);
        assert_eq!(last.last().unwrap()["log"], "line 39\n");
        assert!(std::fs::metadata(&path).unwrap().len() < 400);
    }

    #[test]
    fn cri_format_marks_partial_and_full_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut log = JsonLog::open(&LogConfig {
            path: path.clone(),
            max_size: None,
            max_files: 1,
            disabled: false,
            format: LogFormat::Cri,
        })
        .unwrap();
        log.write(Stream::Stdout, b"one\n");
        log.write(Stream::Stderr, b"half");
        log.flush(Stream::Stderr);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let (time, rest) = lines[0].split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.len() == 30, "{time}");
        assert_eq!(rest, "stdout F one");
        assert_eq!(lines[1].split_once(' ').unwrap().1, "stderr P half");
        std::fs::rename(&path, dir.path().join("0.log.1")).unwrap();
        log.reopen().unwrap();
        log.write(Stream::Stdout, b"two\n");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("stdout F two\n"), "{text}");
    }
}
