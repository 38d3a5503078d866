//! Kubernetes' port forwarding: each forwarded connection reaches a port on the pod's
//! loopback, connected from inside the pod's network namespace (so a port the pod binds to
//! 127.0.0.1 only is reachable too). Over SPDY the client opens an error and a data stream per
//! connection (headers `port`, `requestid`); over a WebSocket each port of the URL's query has
//! a data and an error channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{spdy, websocket, Session, Transport};
use crate::proto as pb;
use crate::service::Cri;

pub async fn serve<IO>(
    cri: Arc<Cri>,
    r: pb::PortForwardRequest,
    session: Session,
    io: IO,
    query: &str,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let netns = cri
        .engine
        .inspect(&r.pod_sandbox_id)
        .ok()
        .and_then(|v| v.netns);
    match session.transport {
        Transport::Spdy => spdy_forward(netns, &r.port, io).await,
        Transport::WebSocket => {
            // kubelet's `port=P` (repeated), or the API server's `ports=P1,P2`.
            let mut ports: Vec<u16> = query
                .split('&')
                .filter_map(|kv| {
                    kv.strip_prefix("port=")
                        .or_else(|| kv.strip_prefix("ports="))
                })
                .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
                .filter_map(|p| p.parse().ok())
                .collect();
            if ports.is_empty() {
                ports = r
                    .port
                    .iter()
                    .filter_map(|p| u16::try_from(*p).ok())
                    .collect();
            }
            ws_forward(netns, &ports, io).await
        }
    }
}

/// A TCP connection to `port` on the loopback of the network namespace at `netns` (the
/// host's for none), made on a thread of its own that enters the namespace.
async fn connect(netns: Option<PathBuf>, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-portforward".into())
        .spawn(move || {
            let made = (|| -> std::io::Result<std::net::TcpStream> {
                if let Some(path) = &netns {
                    let f = std::fs::File::open(path)?;
                    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(std::io::Error::from)?;
                }
                let s = std::net::TcpStream::connect_timeout(
                    &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    std::time::Duration::from_secs(10),
                )?;
                s.set_nonblocking(true)?;
                Ok(s)
            })();
            let _ = tx.send(made);
        })?;
    let s = rx
        .await
        .map_err(|_| std::io::Error::other("the connecting thread died"))??;
    tokio::net::TcpStream::from_std(s)
}

async fn spdy_forward<IO>(netns: Option<PathBuf>, allowed: &[i32], io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (w, mut streams) = spdy::serve(io);
    // requestid → (error stream, data stream) as they arrive.
    let mut pairs: HashMap<String, (Option<u32>, Option<spdy::Stream>)> = HashMap::new();
    while let Some(s) = streams.recv().await {
        let request = s.headers.get("requestid").cloned().unwrap_or_default();
        let kind = s.headers.get("streamtype").cloned().unwrap_or_default();
        let entry = pairs.entry(request.clone()).or_default();
        match kind.as_str() {
            "error" => entry.0 = Some(s.id),
            "data" => entry.1 = Some(s),
            _ => {
                w.data(s.id, Bytes::new(), true);
                continue;
            }
        }
        if let (Some(_), Some(_)) = (&entry.0, &entry.1) {
            let Some((Some(error), Some(data))) = pairs.remove(&request) else {
                continue;
            };
            let port = data
                .headers
                .get("port")
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(0);
            let w = w.clone();
            let netns = netns.clone();
            let allowed = allowed.is_empty() || allowed.contains(&i32::from(port));
            tokio::spawn(async move {
                let tcp = if !allowed || port == 0 {
                    Err(std::io::Error::other(format!(
                        "port {port} is not forwarded for this pod"
                    )))
                } else {
                    connect(netns, port).await
                };
                match tcp {
                    Ok(tcp) => {
                        let (id, rx) = (data.id, data.data);
                        let out = w.clone();
                        relay(tcp, rx, true, move |b, fin| {
                            out.data(id, b, fin);
                        })
                        .await;
                    }
                    Err(e) => {
                        let msg = format!("error forwarding port {port} to pod: {e}");
                        w.data(error, Bytes::from(msg), false);
                        w.data(data.id, Bytes::new(), true);
                    }
                }
                w.data(error, Bytes::new(), true);
            });
        }
    }
}

/// Moves bytes both ways between the TCP connection and a client's stream; `send(bytes,
/// fin)` writes to the client. With `half_close` (SPDY, whose streams end one way at a time)
/// it lasts until both ends are done, else until the pod's end is.
async fn relay(
    tcp: tokio::net::TcpStream,
    mut from_client: mpsc::Receiver<Bytes>,
    half_close: bool,
    send: impl Fn(Bytes, bool) + Send + 'static,
) {
    let (mut rd, mut wr) = tcp.into_split();
    let upstream = tokio::spawn(async move {
        while let Some(b) = from_client.recv().await {
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => send(Bytes::copy_from_slice(&buf[..n]), false),
        }
    }
    send(Bytes::new(), true);
    if half_close {
        let _ = upstream.await;
    } else {
        upstream.abort();
    }
}

async fn ws_forward<IO>(netns: Option<PathBuf>, ports: &[u16], io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (w, mut messages) = websocket::serve(io);
    let mut to_ports: Vec<mpsc::Sender<Bytes>> = Vec::new();
    let mut tasks = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (data_ch, error_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        // Each channel opens with the port it serves (little-endian), as kubelet's does.
        w.send(data_ch, &port.to_le_bytes());
        w.send(error_ch, &port.to_le_bytes());
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        to_ports.push(tx);
        let (w, netns, port) = (w.clone(), netns.clone(), *port);
        tasks.push(tokio::spawn(async move {
            match connect(netns, port).await {
                Ok(tcp) => {
                    let out = w.clone();
                    relay(tcp, rx, false, move |b, _fin| {
                        if !b.is_empty() {
                            out.send(data_ch, &b);
                        }
                    })
                    .await;
                }
                Err(e) => {
                    let msg = format!("error forwarding port {port} to pod: {e}");
                    w.send(error_ch, msg.as_bytes());
                }
            }
        }));
    }
    let (w2, n) = (w.clone(), to_ports.len());
    let dispatch = tokio::spawn(async move {
        while let Some(m) = messages.recv().await {
            let Some((&channel, _)) = m.split_first() else {
                continue;
            };
            let i = usize::from(channel) / 2;
            if channel % 2 == 0 && i < n {
                let _ = to_ports[i].send(m.slice(1..)).await;
            }
        }
        drop(to_ports);
        let _ = w2;
    });
    for t in tasks {
        let _ = t.await;
    }
    dispatch.abort();
    w.close();
}
