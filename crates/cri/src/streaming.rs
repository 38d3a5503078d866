//! The streaming server for Exec, Attach and PortForward (not served yet).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::proto as pb;
use crate::service::Cri;

pub async fn start(_cri: &Arc<Cri>) -> std::result::Result<(), String> {
    Ok(())
}

impl Cri {
    pub fn stream_exec(&self, _r: pb::ExecRequest) -> Result<String> {
        Err(Error::Unimplemented("streaming exec is not served yet".into()))
    }

    pub fn stream_attach(&self, _r: pb::AttachRequest) -> Result<String> {
        Err(Error::Unimplemented("streaming attach is not served yet".into()))
    }

    pub fn stream_port_forward(&self, _r: pb::PortForwardRequest) -> Result<String> {
        Err(Error::Unimplemented("port forwarding is not served yet".into()))
    }
}
