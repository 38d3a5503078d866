//! Progress of a pull or push, in the steps Docker shows per layer. The engine turns these
//! into dockerd's JSON message stream; the CLI draws them.

/// One progress event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A line about the whole operation ("Pulling from library/busybox", "Digest: …"),
    /// with the id docker shows before it (the tag), if any.
    Status { id: Option<String>, status: String },
    /// A step of one layer, named by the short form of its digest.
    Layer {
        id: String,
        step: Step,
        /// Bytes done and total, for the steps that have a bar.
        current: u64,
        total: u64,
    },
    /// The end of a push of one tag: dockerd's `aux` message.
    Pushed {
        tag: String,
        digest: String,
        size: u64,
    },
}

/// Docker's per-layer steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    AlreadyExists,
    PullingFsLayer,
    Waiting,
    Downloading,
    VerifyingChecksum,
    DownloadComplete,
    Extracting,
    PullComplete,
    Preparing,
    Pushing,
    Pushed,
    LayerAlreadyExists,
    MountedFrom(String),
}

impl Step {
    /// The words dockerd sends.
    pub fn text(&self) -> String {
        match self {
            Step::AlreadyExists => "Already exists".into(),
            Step::PullingFsLayer => "Pulling fs layer".into(),
            Step::Waiting => "Waiting".into(),
            Step::Downloading => "Downloading".into(),
            Step::VerifyingChecksum => "Verifying Checksum".into(),
            Step::DownloadComplete => "Download complete".into(),
            Step::Extracting => "Extracting".into(),
            Step::PullComplete => "Pull complete".into(),
            Step::Preparing => "Preparing".into(),
            Step::Pushing => "Pushing".into(),
            Step::Pushed => "Pushed".into(),
            Step::LayerAlreadyExists => "Layer already exists".into(),
            Step::MountedFrom(r) => format!("Mounted from {r}"),
        }
    }

    /// Whether the step carries a progress bar.
    pub fn has_bar(&self) -> bool {
        matches!(self, Step::Downloading | Step::Extracting | Step::Pushing)
    }
}

/// Where progress goes. `send` returns false when nobody listens any more (the client hung
/// up): the operation then stops.
pub trait ProgressSink: Send + Sync {
    fn send(&self, p: Progress) -> bool;
}

impl ProgressSink for tokio::sync::mpsc::UnboundedSender<Progress> {
    fn send(&self, p: Progress) -> bool {
        tokio::sync::mpsc::UnboundedSender::send(self, p).is_ok()
    }
}

/// A sink that drops everything (tests, `-q`).
#[derive(Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn send(&self, _: Progress) -> bool {
        true
    }
}

/// The 12-hex-digit id docker shows for a digest.
pub(crate) fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

/// Sends a layer step without a bar.
pub(crate) fn step(sink: &dyn ProgressSink, id: &str, step: Step) -> bool {
    sink.send(Progress::Layer {
        id: id.to_string(),
        step,
        current: 0,
        total: 0,
    })
}

/// Sends a whole-operation line.
pub(crate) fn status(sink: &dyn ProgressSink, id: Option<&str>, text: String) -> bool {
    sink.send(Progress::Status {
        id: id.map(str::to_string),
        status: text,
    })
}
