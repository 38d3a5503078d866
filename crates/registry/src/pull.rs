//! Pull: resolve the reference to a manifest (through an index for the platform), fetch the
//! config, then every missing layer in parallel, each in one pass — download → sha256 →
//! decompress → diff_id → unpack — with nothing visible before it verified. A download cut
//! short resumes with an HTTP Range request from the byte it reached; layers that completed
//! stay in the store, so pulling again fetches only what is missing.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::manifest::{kind_of, Descriptor, Index, Kind, Manifest, Platform};
use berth_image::{ImageConfig, Ingest, PullLayer, Reference, Store};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::auth::backoff;
use crate::error::{Error, Result};
use crate::options::Credentials;
use crate::progress::{short, status, step, Progress, ProgressSink, Step};
use crate::transport::{detail, error_message, read_capped, unexpected, Registries, Session};

/// Every manifest type berth reads, as the Accept header lists them.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A config larger than this is refused (configs are small JSON; a registry could send
/// anything).
const MAX_CONFIG: u64 = 32 << 20;

/// Most resumed requests for one blob, however much each brought.
const MAX_RESUMES: u32 = 64;

/// Bytes in flight between a layer's download and its unpacking: bounds memory per layer
/// whatever size of chunks the connection delivers (hyper's grow to hundreds of kB).
const PIPE_BYTES: usize = 4 << 20;

/// What a pull asks for besides the reference.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// `os/arch[/variant]`; empty for this machine's.
    pub platform: String,
    pub creds: Option<Credentials>,
}

/// The result of a pull.
#[derive(Clone, Debug)]
pub struct PullOutcome {
    pub image: berth_image::Image,
    /// The digest the reference resolved to (the index's, for a multi-platform image).
    pub digest: String,
    /// Whether the image was already here under this reference.
    pub up_to_date: bool,
}

/// A manifest fetched and verified.
pub(crate) struct Fetched {
    pub(crate) bytes: Vec<u8>,
    pub(crate) media_type: String,
    pub(crate) digest: String,
}

impl Registries {
    /// Pulls `reference` into `store`, reporting progress to `sink`.
    pub async fn pull(
        &self,
        store: Arc<Store>,
        reference: &Reference,
        opts: &PullOptions,
        sink: &dyn ProgressSink,
    ) -> Result<PullOutcome> {
        let platform =
            Platform::parse(&opts.platform).map_err(|e| Error::Invalid(e.to_string()))?;
        let image = reference.familiar();
        self.pull_any(store, reference, opts, &platform, sink)
            .await
            .map_err(|e| e.while_("pulling", &image))
    }

    async fn pull_any(
        &self,
        store: Arc<Store>,
        reference: &Reference,
        opts: &PullOptions,
        platform: &Platform,
        sink: &dyn ProgressSink,
    ) -> Result<PullOutcome> {
        let store = &store;
        self.mirrors_first(reference, "pull", |base| async move {
            self.pull_from(store, reference, base.as_deref(), opts, platform, sink)
                .await
        })
        .await
    }

    /// `each` against the mirrors first (Docker Hub names only), then the registry itself:
    /// a mirror's failure is logged and the next one tried; the registry's is the answer.
    pub(crate) async fn mirrors_first<T, F, Fut>(
        &self,
        reference: &Reference,
        what: &str,
        mut each: F,
    ) -> Result<T>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mirrors = if reference.domain() == "docker.io" {
            self.opts.mirrors.clone()
        } else {
            Vec::new()
        };
        for m in mirrors {
            match each(Some(m.clone())).await {
                Ok(t) => return Ok(t),
                Err(e) => {
                    tracing::warn!("mirror {m} failed to {what} {}: {e}", reference.familiar())
                }
            }
        }
        each(None).await
    }

    /// A session to read `reference`'s repository (at `base`, a mirror, when given); a
    /// refused token is Docker's "pull access denied". `image` names it in messages.
    pub(crate) async fn pull_session(
        &self,
        reference: &Reference,
        base: Option<&str>,
        creds: Option<&Credentials>,
        image: &str,
    ) -> Result<Session<'_>> {
        let repo = reference.path();
        self.session(
            reference.domain(),
            base,
            repo,
            vec![format!("repository:{repo}:pull")],
            creds,
            "pull",
            image,
        )
        .await
        .map_err(|e| deny_as_pull(e, reference))
    }

    async fn pull_from(
        &self,
        store: &Arc<Store>,
        reference: &Reference,
        base: Option<&str>,
        opts: &PullOptions,
        platform: &Platform,
        sink: &dyn ProgressSink,
    ) -> Result<PullOutcome> {
        let image = reference.familiar();
        let repo = reference.path();
        let s = self
            .pull_session(reference, base, opts.creds.as_ref(), &image)
            .await?;
        let top = self.top_manifest(&s, reference).await?;
        let resolved = match kind_of(&top.media_type, &top.bytes).map_err(bad(&image))? {
            Kind::Index => {
                let idx: Index = serde_json::from_slice(&top.bytes).map_err(bad(&image))?;
                let pick = idx
                    .manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
                    .ok_or_else(|| Error::NoPlatform {
                        image: image.clone(),
                        platform: platform.to_string(),
                    })?;
                self.manifest(&s, &pick.digest, Some(&pick.digest)).await?
            }
            Kind::Manifest => Fetched {
                bytes: top.bytes.clone(),
                media_type: top.media_type.clone(),
                digest: top.digest.clone(),
            },
            Kind::Schema1 => {
                return Err(Error::BadManifest {
                    image,
                    reason: "Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported; push the image again with a current client".into(),
                })
            }
        };
        if kind_of(&resolved.media_type, &resolved.bytes).map_err(bad(&image))? != Kind::Manifest {
            return Err(Error::BadManifest {
                image,
                reason: format!("{} is not an image manifest", resolved.digest),
            });
        }
        let m: Manifest = serde_json::from_slice(&resolved.bytes).map_err(bad(&image))?;
        let config = self.small_blob(&s, &m.config, MAX_CONFIG).await?;
        let cfg: ImageConfig = serde_json::from_slice(&config).map_err(bad(&image))?;
        if cfg.rootfs.diff_ids.len() != m.layers.len() {
            return Err(Error::BadManifest {
                image,
                reason: format!(
                    "config lists {} layers, manifest {}",
                    cfg.rootfs.diff_ids.len(),
                    m.layers.len()
                ),
            });
        }
        let repo_digest = Reference::parse(&format!("{}@{}", reference.repository(), top.digest))
            .map_err(Error::store(&image))?;
        let mut refs = vec![repo_digest];
        if reference.digest().is_none() {
            refs.push(reference.clone());
        }
        let up_to_date = store
            .get(&reference.to_string())
            .is_ok_and(|i| i.id == m.config.digest);

        let shown = reference.digest().or(reference.tag()).unwrap_or("latest");
        status(sink, Some(shown), format!("Pulling from {repo}"));
        let ingest = Arc::new(Ingest::new(store.clone()));
        let diff_ids = Arc::new(cfg.rootfs.diff_ids.clone());
        let mut sizes = vec![0u64; m.layers.len()];
        let mut todo = Vec::new();
        for (i, d) in m.layers.iter().enumerate() {
            let layer = PullLayer {
                digest: d.digest.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
                diff_ids: diff_ids.clone(),
                index: i,
            };
            match ingest.present(&layer) {
                Some(n) => {
                    sizes[i] = n;
                    step(sink, &short(&d.digest), Step::AlreadyExists);
                }
                None => {
                    step(sink, &short(&d.digest), Step::PullingFsLayer);
                    todo.push(layer);
                }
            }
        }
        for l in todo.iter().skip(self.opts.concurrency) {
            step(sink, &short(&l.digest), Step::Waiting);
        }
        let s = &s;
        // After the first failure no further layer starts, but those in flight finish: a
        // layer that completes is verified and kept (the next pull skips it), and none is
        // left half-written when the error is reported.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let failed = &failed;
        let results: Vec<Result<(usize, u64)>> =
            futures_util::stream::iter(todo.into_iter().map(|l| {
                let ingest = ingest.clone();
                async move {
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return Err(Error::Cancelled {
                            image: s.image.clone(),
                        });
                    }
                    let i = l.index;
                    let r = self.layer(s, ingest, l, sink).await.map(|n| (i, n));
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    r
                }
            }))
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok((i, n)) => sizes[i] = n,
                Err(Error::Cancelled { .. }) if first_err.is_some() => {}
                Err(e) => {
                    if first_err.is_none() || matches!(first_err, Some(Error::Cancelled { .. })) {
                        first_err = Some(e);
                    }
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let store_image = {
            let ingest = ingest.clone();
            let manifest = resolved.bytes.clone();
            let refs = refs.clone();
            tokio::task::spawn_blocking(move || ingest.register(&manifest, &config, &sizes, &refs))
                .await
                .map_err(|e| Error::Invalid(format!("{image}: register: {e}")))?
                .map_err(Error::store(&image))?
        };
        status(sink, None, format!("Digest: {}", top.digest));
        Ok(PullOutcome {
            image: store_image,
            digest: top.digest,
            up_to_date,
        })
    }

    /// `GET /v2/<repo>/manifests/<ref>`, bounded in size and verified when asked by digest.
    /// The manifest (or index) `reference` names: by digest, else by tag (`latest`).
    pub(crate) async fn top_manifest(
        &self,
        s: &Session<'_>,
        reference: &Reference,
    ) -> Result<Fetched> {
        let want = reference.digest().or(reference.tag()).unwrap_or("latest");
        self.manifest(s, want, reference.digest()).await
    }

    pub(crate) async fn manifest(
        &self,
        s: &Session<'_>,
        r: &str,
        digest: Option<&str>,
    ) -> Result<Fetched> {
        let url = s.url(&format!("manifests/{r}"));
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_MANIFESTS));
        let resp = s.get(Method::GET, &url, h).await?;
        let st = resp.status();
        let image = if r.starts_with("sha256:") {
            format!("{}@{r}", s.image.split('@').next().unwrap_or(&s.image))
        } else {
            s.image.clone()
        };
        if st == StatusCode::NOT_FOUND {
            return Err(Error::ManifestUnknown {
                image,
                message: error_message(resp).await,
            });
        }
        if st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN {
            return Err(Error::PullDenied {
                repository: repo_of(&s.image),
                message: error_message(resp).await,
            });
        }
        if !st.is_success() {
            return Err(unexpected("GET", &url, resp).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let limit = self.opts.max_manifest_size;
        let too_large = || Error::ManifestTooLarge {
            image: image.clone(),
            limit,
        };
        let bytes = read_capped(resp, limit, &url, &too_large).await?;
        let actual = digest_of(&bytes);
        if let Some(d) = digest {
            if d != actual {
                return Err(Error::DigestMismatch {
                    image,
                    what: "manifest".to_string(),
                    expected: d.to_string(),
                    actual,
                });
            }
        }
        Ok(Fetched {
            bytes,
            media_type,
            digest: actual,
        })
    }

    /// A small blob (the config), read whole, size-bounded and verified.
    pub(crate) async fn small_blob(
        &self,
        s: &Session<'_>,
        d: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>> {
        let url = s.url(&format!("blobs/{}", d.digest));
        let resp = s.get(Method::GET, &url, HeaderMap::new()).await?;
        if !resp.status().is_success() {
            return Err(unexpected("GET", &url, resp).await);
        }
        let too_large = || Error::BadManifest {
            image: s.image.clone(),
            reason: format!("config {} is larger than {limit} bytes", d.digest),
        };
        let bytes = read_capped(resp, limit.min(d.size.max(1)), &url, &too_large).await?;
        let actual = digest_of(&bytes);
        if actual != d.digest {
            return Err(Error::DigestMismatch {
                image: s.image.clone(),
                what: "image config".to_string(),
                expected: d.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// One layer: the download feeds a bounded channel that a blocking thread reads to
    /// verify and unpack.
    async fn layer(
        &self,
        s: &Session<'_>,
        ingest: Arc<Ingest>,
        layer: PullLayer,
        sink: &dyn ProgressSink,
    ) -> Result<u64> {
        let id = short(&layer.digest);
        let (tx, rx) = pipe();
        let l2 = layer.clone();
        let unpack = tokio::task::spawn_blocking(move || {
            let mut r = rx;
            ingest.unpack(&mut r, &l2)
        });
        let downloaded = self.download(s, &layer, &id, tx, sink).await;
        let unpacked = unpack
            .await
            .map_err(|e| Error::Invalid(format!("{}: unpack: {e}", s.image)))?;
        // A failed download ends the unpacker's input early; its error is only a symptom.
        downloaded?;
        let n = unpacked.map_err(|e| match e {
            berth_image::Error::DigestMismatch {
                what,
                expected,
                actual,
            } => Error::DigestMismatch {
                image: s.image.clone(),
                what,
                expected,
                actual,
            },
            other => Error::Store {
                image: s.image.clone(),
                source: other,
            },
        })?;
        step(sink, &id, Step::PullComplete);
        Ok(n)
    }

    /// Streams the blob into `tx`, resuming with `Range` after an interruption.
    async fn download(
        &self,
        s: &Session<'_>,
        layer: &PullLayer,
        id: &str,
        tx: PipeTx,
        sink: &dyn ProgressSink,
    ) -> Result<()> {
        let url = s.url(&format!("blobs/{}", layer.digest));
        let want = layer.size;
        let mut got = 0u64;
        let mut interruptions = 0u32;
        let mut total_cuts = 0u32;
        let mut got_at_cut = 0u64;
        let mut last_report = Instant::now() - Duration::from_secs(1);
        let cancelled = || Error::Cancelled {
            image: s.image.clone(),
        };
        loop {
            let mut h = HeaderMap::new();
            if got > 0 {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes={got}-")) {
                    h.insert(RANGE, v);
                }
            }
            let resp = s.get(Method::GET, &url, h).await?;
            let st = resp.status();
            // A server that ignores Range sends everything again: skip what we have.
            let mut skip = match st {
                StatusCode::OK => got,
                StatusCode::PARTIAL_CONTENT => {
                    let start = resp
                        .headers()
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("bytes "))
                        .and_then(|v| v.split('-').next())
                        .and_then(|v| v.parse::<u64>().ok());
                    match start {
                        Some(n) if n <= got => got - n,
                        _ => {
                            return Err(Error::Status {
                                method: "GET",
                                url,
                                status: 206,
                                detail: ": Content-Range does not match the requested range".into(),
                            })
                        }
                    }
                }
                StatusCode::NOT_FOUND => {
                    return Err(Error::Status {
                        method: "GET",
                        url,
                        status: 404,
                        detail: format!(
                            ": layer {} missing from the registry{}",
                            layer.digest,
                            detail(resp).await
                        ),
                    })
                }
                _ => return Err(unexpected("GET", &url, resp).await),
            };
            let mut body = resp.bytes_stream();
            let mut cut = None;
            while let Some(chunk) = body.next().await {
                let mut b = match chunk {
                    Ok(b) => b,
                    Err(e) => {
                        cut = Some(crate::transport::cause(&e, self.opts.timeout));
                        break;
                    }
                };
                if skip > 0 {
                    let n = (skip.min(b.len() as u64)) as usize;
                    b = b.slice(n..);
                    skip -= n as u64;
                    if b.is_empty() {
                        continue;
                    }
                }
                got += b.len() as u64;
                if got > want {
                    let _ = tx
                        .send(Err(io::Error::other("blob larger than its descriptor")))
                        .await;
                    return Err(Error::DigestMismatch {
                        image: s.image.clone(),
                        what: format!("layer {}", layer.digest),
                        expected: format!("{want} bytes"),
                        actual: format!("more than {want} bytes"),
                    });
                }
                if !tx.send(Ok(b)).await {
                    // The unpacker stopped (a hostile or broken layer): its error tells why.
                    return Ok(());
                }
                if last_report.elapsed() >= Duration::from_millis(100) || got == want {
                    last_report = Instant::now();
                    if !sink.send(Progress::Layer {
                        id: id.to_string(),
                        step: Step::Downloading,
                        current: got,
                        total: want,
                    }) {
                        return Err(cancelled());
                    }
                }
            }
            if got == want {
                break;
            }
            // Only cuts that brought nothing count against the attempts; a connection that
            // keeps making progress may go on, up to a hard bound.
            total_cuts += 1;
            if got > got_at_cut {
                interruptions = 0;
            }
            got_at_cut = got;
            interruptions += 1;
            if interruptions >= self.opts.attempts.max(1) || total_cuts >= MAX_RESUMES {
                let _ = tx.send(Err(io::Error::other("download truncated"))).await;
                tracing::warn!(
                    "{}: layer {} cut at {got}/{want}: {}",
                    s.image,
                    layer.digest,
                    cut.unwrap_or_default()
                );
                return Err(Error::Truncated {
                    image: s.image.clone(),
                    digest: layer.digest.clone(),
                    got,
                    want,
                });
            }
            tracing::info!(
                "{}: layer {} interrupted at {got}/{want} ({}); resuming",
                s.image,
                layer.digest,
                cut.as_deref().unwrap_or("connection closed")
            );
            tokio::time::sleep(backoff(interruptions.saturating_sub(1))).await;
        }
        drop(tx);
        step(sink, id, Step::VerifyingChecksum);
        step(sink, id, Step::DownloadComplete);
        sink.send(Progress::Layer {
            id: id.to_string(),
            step: Step::Extracting,
            current: want,
            total: want,
        });
        Ok(())
    }

    /// `GET /v2/<repo>/tags/list`: every tag, for `pull --all-tags`; a Docker Hub name asks
    /// the mirrors first, as its pulls do.
    pub async fn tags(
        &self,
        reference: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<Vec<String>> {
        self.mirrors_first(reference, "list the tags of", |base| async move {
            self.tags_from(reference, base.as_deref(), creds).await
        })
        .await
    }

    async fn tags_from(
        &self,
        reference: &Reference,
        base: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Result<Vec<String>> {
        let image = reference.familiar_repository();
        let s = self.pull_session(reference, base, creds, &image).await?;
        let url = s.url("tags/list");
        let resp = s.get(Method::GET, &url, HeaderMap::new()).await?;
        let st = resp.status();
        if st == StatusCode::NOT_FOUND || st == StatusCode::UNAUTHORIZED {
            return Err(Error::PullDenied {
                repository: image,
                message: error_message(resp).await,
            });
        }
        if !st.is_success() {
            return Err(unexpected("GET", &url, resp).await);
        }
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let body = crate::transport::read_limited(resp, self.opts.max_manifest_size, &url).await?;
        let t: Tags = serde_json::from_slice(&body).map_err(bad(&image))?;
        let mut tags = t.tags.unwrap_or_default();
        tags.sort();
        Ok(tags)
    }
}

/// A token refused for a pull is Docker's "pull access denied".
pub(crate) fn deny_as_pull(e: Error, r: &Reference) -> Error {
    match e {
        Error::Unauthorized { message, .. } => Error::PullDenied {
            repository: r.familiar_repository(),
            message,
        },
        other => other,
    }
}

fn repo_of(image: &str) -> String {
    Reference::parse(image)
        .map(|r| r.familiar_repository())
        .unwrap_or_else(|_| image.to_string())
}

pub(crate) fn bad<E: std::fmt::Display>(image: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::BadManifest {
        image: image.to_string(),
        reason: e.to_string(),
    }
}

fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A layer's pipe: chunks go through an unbounded channel, but a sender first takes as many
/// permits as the chunk has bytes (at most `PIPE_BYTES` in all), and the reader gives them
/// back once it consumed the chunk.
fn pipe() -> (PipeTx, ChannelReader) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let budget = Arc::new(tokio::sync::Semaphore::new(PIPE_BYTES));
    (
        PipeTx {
            tx,
            budget: budget.clone(),
        },
        ChannelReader {
            rx,
            cur: Bytes::new(),
            budget,
            owed: 0,
        },
    )
}

/// The download's side of a layer's pipe.
struct PipeTx {
    tx: tokio::sync::mpsc::UnboundedSender<io::Result<Bytes>>,
    budget: Arc<tokio::sync::Semaphore>,
}

impl PipeTx {
    /// Waits for room, then sends; false when the reader is gone.
    async fn send(&self, item: io::Result<Bytes>) -> bool {
        if let Ok(b) = &item {
            let n = b.len().min(PIPE_BYTES) as u32;
            match self.budget.acquire_many(n).await {
                Ok(p) => p.forget(),
                Err(_) => return false,
            }
        }
        self.tx.send(item).is_ok()
    }
}

/// The blocking side of a layer's pipe.
struct ChannelReader {
    rx: tokio::sync::mpsc::UnboundedReceiver<io::Result<Bytes>>,
    cur: Bytes,
    budget: Arc<tokio::sync::Semaphore>,
    /// Permits of the chunk being read, returned when it is used up.
    owed: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.owed > 0 {
                self.budget.add_permits(self.owed);
                self.owed = 0;
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => {
                    self.owed = b.len().min(PIPE_BYTES);
                    self.cur = b;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

impl Drop for ChannelReader {
    fn drop(&mut self) {
        // A sender waiting for room must learn that nobody will read.
        self.budget.close();
    }
}
