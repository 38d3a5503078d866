//! Push: each blob is checked with HEAD (already there: skipped), mounted from another
//! repository of the same registry that holds the image (cross-repository mount), or
//! uploaded — in one PUT, or in PATCH chunks when large — then the manifest is put under
//! the tag. The blobs and manifest are the stored bytes, so their digests are those the
//! image was pulled with.

use std::io::SeekFrom;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_image::manifest::Descriptor;
use berth_image::{Reference, Store};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::{Error, Result};
use crate::options::Credentials;
use crate::progress::{short, status, step, Progress, ProgressSink, Step};
use crate::transport::{error_message, unexpected, Session};
use crate::Registries;

/// What a push of one tag produced.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    pub tag: String,
    pub digest: String,
    pub size: u64,
}

impl Registries {
    /// Pushes the image tagged `reference` (which has a tag) to its registry.
    pub async fn push(
        &self,
        store: Arc<Store>,
        reference: &Reference,
        creds: Option<&Credentials>,
        sink: &dyn ProgressSink,
    ) -> Result<PushOutcome> {
        let image = reference.familiar();
        self.push_one(store, reference, creds, sink)
            .await
            .map_err(|e| e.while_("pushing", &image))
    }

    async fn push_one(
        &self,
        store: Arc<Store>,
        reference: &Reference,
        creds: Option<&Credentials>,
        sink: &dyn ProgressSink,
    ) -> Result<PushOutcome> {
        let image = reference.familiar();
        let tag = reference.tag().unwrap_or("latest").to_string();
        let (dist, mounts) = {
            let store = store.clone();
            let name = reference.to_string();
            let domain = reference.domain().to_string();
            let path = reference.path().to_string();
            tokio::task::spawn_blocking(move || {
                let img = store.get(&name)?;
                // Other repositories of this registry that hold the image can lend their
                // blobs (cross-repository mount).
                let mut mounts: Vec<String> = img
                    .repo_tags
                    .iter()
                    .chain(&img.repo_digests)
                    .filter_map(|r| Reference::parse(r).ok())
                    .filter(|r| r.domain() == domain && r.path() != path)
                    .map(|r| r.path().to_string())
                    .collect();
                mounts.sort();
                mounts.dedup();
                Ok::<_, berth_image::Error>((store.distribution(&name)?, mounts))
            })
            .await
            .map_err(|e| Error::Invalid(format!("{image}: {e}")))?
            .map_err(Error::store(&image))?
        };
        status(
            sink,
            None,
            format!("The push refers to repository [{}]", reference.repository()),
        );
        let repo = reference.path();
        let mut scopes = vec![format!("repository:{repo}:pull,push")];
        scopes.extend(mounts.iter().map(|m| format!("repository:{m}:pull")));
        let s = self
            .session(
                reference.domain(),
                None,
                repo,
                scopes,
                creds,
                "push",
                &image,
            )
            .await?;
        for l in dist.layers.iter().rev() {
            step(sink, &short(&l.digest), Step::Preparing);
        }
        let s = &s;
        let mounts = &mounts;
        let store2 = &store;
        let layers: Vec<Descriptor> = dist.layers.iter().rev().cloned().collect();
        futures_util::stream::iter(
            layers
                .into_iter()
                .map(|l| async move { self.push_blob(s, store2, &l, mounts, true, sink).await }),
        )
        .buffer_unordered(self.opts.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
        self.push_blob(s, &store, &dist.config, mounts, false, sink)
            .await?;

        let url = s.url(&format!("manifests/{tag}"));
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&dist.media_type) {
            h.insert(CONTENT_TYPE, v);
        }
        let body = dist.manifest.clone();
        let resp = s
            .send(Method::PUT, &url, h, &|| Ok(Some(body.clone().into())))
            .await?;
        check(resp, "PUT", &url, &image, StatusCode::CREATED).await?;
        let repo_digest = Reference::parse(&format!("{}@{}", reference.repository(), dist.digest))
            .map_err(Error::store(&image))?;
        {
            let store = store.clone();
            let id = dist.id.clone();
            tokio::task::spawn_blocking(move || store.add_repo_digest(&id, &repo_digest))
                .await
                .map_err(|e| Error::Invalid(format!("{image}: {e}")))?
                .map_err(Error::store(&image))?;
        }
        let size = dist.manifest.len() as u64;
        status(
            sink,
            None,
            format!("{tag}: digest: {} size: {size}", dist.digest),
        );
        sink.send(Progress::Pushed {
            tag: tag.clone(),
            digest: dist.digest.clone(),
            size,
        });
        Ok(PushOutcome {
            tag,
            digest: dist.digest,
            size,
        })
    }

    async fn push_blob(
        &self,
        s: &Session<'_>,
        store: &Arc<Store>,
        d: &Descriptor,
        mounts: &[String],
        shown: bool,
        sink: &dyn ProgressSink,
    ) -> Result<()> {
        let id = short(&d.digest);
        let show = |st: Step| {
            if shown {
                step(sink, &id, st);
            }
        };
        let head = s
            .get(
                Method::HEAD,
                &s.url(&format!("blobs/{}", d.digest)),
                HeaderMap::new(),
            )
            .await?;
        if head.status().is_success() {
            show(Step::LayerAlreadyExists);
            return Ok(());
        }
        let mut location = None;
        for from in mounts {
            let url = s.url(&format!("blobs/uploads/?mount={}&from={from}", d.digest));
            let r = s.get(Method::POST, &url, HeaderMap::new()).await?;
            match r.status() {
                StatusCode::CREATED => {
                    show(Step::MountedFrom(from.clone()));
                    return Ok(());
                }
                StatusCode::ACCEPTED => {
                    location = Some(self.location(s, &r, &url)?);
                    break;
                }
                _ => {}
            }
        }
        let mut location = match location {
            Some(l) => l,
            None => {
                let url = s.url("blobs/uploads/");
                let r = s.get(Method::POST, &url, HeaderMap::new()).await?;
                if r.status() != StatusCode::ACCEPTED {
                    return Err(status_error(r, "POST", &url, &s.image).await);
                }
                self.location(s, &r, &url)?
            }
        };
        let path = store
            .root()
            .join("blobs/sha256")
            .join(d.digest.trim_start_matches("sha256:"));
        // The bytes sent, for the bar; a ticker reports them while the upload runs.
        let sent = Arc::new(AtomicU64::new(0));
        let upload = async {
            if d.size <= self.opts.chunk_size {
                let url = with_digest(&location, &d.digest);
                let r = s
                    .send(Method::PUT, &url, octets(d.size), &|| {
                        Ok(Some(file_body(&path, 0, d.size, sent.clone())))
                    })
                    .await?;
                return check(r, "PUT", &url, &s.image, StatusCode::CREATED).await;
            }
            let mut off = 0;
            while off < d.size {
                let len = self.opts.chunk_size.min(d.size - off);
                let mut h = octets(len);
                if let Ok(v) = HeaderValue::from_str(&format!("{off}-{}", off + len - 1)) {
                    h.insert("Content-Range", v);
                }
                let start = sent.load(Ordering::Relaxed);
                let r = s
                    .send(Method::PATCH, &location, h, &|| {
                        sent.store(start, Ordering::Relaxed);
                        Ok(Some(file_body(&path, off, len, sent.clone())))
                    })
                    .await?;
                if r.status() != StatusCode::ACCEPTED {
                    return Err(status_error(r, "PATCH", &location, &s.image).await);
                }
                location = self.location(s, &r, &location)?;
                off += len;
            }
            let url = with_digest(&location, &d.digest);
            let r = s.send(Method::PUT, &url, octets(0), &|| Ok(None)).await?;
            check(r, "PUT", &url, &s.image, StatusCode::CREATED).await
        };
        tokio::pin!(upload);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                r = &mut upload => { r?; break; }
                _ = tick.tick(), if shown => {
                    if !sink.send(Progress::Layer {
                        id: id.clone(),
                        step: Step::Pushing,
                        current: sent.load(Ordering::Relaxed),
                        total: d.size,
                    }) {
                        return Err(Error::Cancelled { image: s.image.clone() });
                    }
                }
            }
        }
        show(Step::Pushed);
        Ok(())
    }

    fn location(&self, s: &Session<'_>, r: &reqwest::Response, url: &str) -> Result<String> {
        r.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| s.absolute(l))
            .ok_or_else(|| Error::Status {
                method: "POST",
                url: url.to_string(),
                status: r.status().as_u16(),
                detail: ": no Location for the upload".to_string(),
            })
    }
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

fn octets(len: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h
}

/// `len` bytes of the blob file from `off`, streamed, counting into `sent`.
fn file_body(path: &std::path::Path, off: u64, len: u64, sent: Arc<AtomicU64>) -> reqwest::Body {
    let path = path.to_path_buf();
    let stream = futures_util::stream::once(async move {
        let mut f = tokio::fs::File::open(&path).await?;
        f.seek(SeekFrom::Start(off)).await?;
        Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(
            f.take(len),
            256 << 10,
        ))
    })
    .try_flatten()
    .inspect_ok(move |b| {
        sent.fetch_add(b.len() as u64, Ordering::Relaxed);
    });
    reqwest::Body::wrap_stream(stream)
}

async fn check(
    r: reqwest::Response,
    method: &'static str,
    url: &str,
    image: &str,
    want: StatusCode,
) -> Result<()> {
    if r.status() == want || r.status().is_success() {
        return Ok(());
    }
    Err(status_error(r, method, url, image).await)
}

async fn status_error(r: reqwest::Response, method: &'static str, url: &str, image: &str) -> Error {
    let st = r.status();
    if st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN {
        return Error::Unauthorized {
            action: "push",
            target: image.to_string(),
            message: error_message(r).await,
        };
    }
    unexpected(method, url, r).await
}
