//! berth's Kubernetes CRI v1 face: RuntimeService and ImageService over gRPC on a Unix socket,
//! served by `berth daemon` over the engine's interface. Pods' containers are ordinary engine
//! containers with `io.kubernetes.*` labels, so `berth ps` and `docker ps` show them.

mod cni;
mod containers;
mod error;
mod grpc;
mod images;
mod labels;
mod pods;
mod service;
mod state;
mod stats;
mod streaming;
mod time;
mod translate;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

pub use service::CriOptions;

/// The CRI v1 messages, server and client, generated from `proto/api.proto` (k8s.io/cri-api).
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("runtime.v1");
}

/// The CRI as a face of the daemon: serves until the daemon stops. With no socket it does
/// nothing.
pub fn face(opts: CriOptions) -> berth_engine::Face {
    berth_engine::Face::task_only(Box::new(move |engine, stop| {
        Box::pin(serve(engine, opts, stop))
    }))
}

async fn serve(
    engine: berth_engine::Engine,
    opts: CriOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let Some(socket) = opts.socket.clone() else {
        return Ok(());
    };
    let listener = bind(&socket)?;
    let cri = Arc::new(service::Cri::new(engine, opts).map_err(|e| e.to_string())?);
    cri.follow_events();
    streaming::start(&cri).await?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let served = tonic::transport::Server::builder()
        .add_service(proto::runtime_service_server::RuntimeServiceServer::new(
            grpc::Runtime(cri.clone()),
        ))
        .add_service(proto::image_service_server::ImageServiceServer::new(
            grpc::Images(cri.clone()),
        ))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    let _ = std::fs::remove_file(&socket);
    served.map_err(|e| format!("serve the CRI on {}: {e}", socket.display()))
}

/// Binds the CRI socket, root-only (0600): whoever reaches it runs anything as root. A socket
/// left by a daemon that died is replaced; one that answers means another daemon serves it.
fn bind(path: &Path) -> Result<tokio::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        berth_engine::modes::create_dir_all(dir, 0o711)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "another daemon is already serving the CRI on {} (use --cri-socket)",
            path.display()
        ));
    }
    let _ = std::fs::remove_file(path);
    // Connecting needs write permission on the socket: with the daemon's umask nobody but
    // root has it between the bind and the chmod.
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(listener)
}
