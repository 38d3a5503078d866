//! ImageService: the engine's image store (the one `berth build` and `docker pull` fill), pulls
//! through the engine's registry client with the credentials kubelet passes.

use berth_engine::{Credentials, ImageView};

use crate::error::{Error, Result};
use crate::proto as pb;
use crate::service::Cri;
use crate::time;

impl Cri {
    pub fn list_images(&self, filter: Option<pb::ImageFilter>) -> Result<Vec<pb::Image>> {
        let wanted = filter
            .and_then(|f| f.image)
            .map(|i| i.image)
            .filter(|i| !i.is_empty());
        if let Some(name) = wanted {
            return Ok(self
                .engine
                .image(&name)
                .ok()
                .map(image)
                .into_iter()
                .collect());
        }
        Ok(self.engine.images()?.into_iter().map(image).collect())
    }

    /// The image, or None (kubelet's "not present", not an error).
    pub fn image_status(
        &self,
        spec: Option<pb::ImageSpec>,
        verbose: bool,
    ) -> Result<pb::ImageStatusResponse> {
        let name = image_name(spec)?;
        let Ok(view) = self.engine.image(&name) else {
            return Ok(pb::ImageStatusResponse::default());
        };
        let mut info = std::collections::HashMap::new();
        if verbose {
            info.insert(
                "info".to_owned(),
                serde_json::json!({"imageSpec": view.config, "id": view.id}).to_string(),
            );
        }
        Ok(pb::ImageStatusResponse {
            image: Some(image(view)),
            info,
        })
    }

    /// Pulls the image; its reference (the image id, as containerd answers).
    pub async fn pull_image(
        &self,
        spec: Option<pb::ImageSpec>,
        auth: Option<pb::AuthConfig>,
    ) -> Result<String> {
        let name = image_name(spec)?;
        let creds = auth.map(|a| Credentials {
            username: a.username,
            password: a.password,
            auth: a.auth,
            serveraddress: a.server_address,
            identitytoken: a.identity_token,
            registrytoken: a.registry_token,
        });
        let view = self.engine.pull(&name, creds).await?;
        Ok(view.id)
    }

    /// Removes the image with all its tags and digests; one that is gone is not an error.
    pub fn remove_image(&self, spec: Option<pb::ImageSpec>) -> Result<()> {
        let name = image_name(spec)?;
        match self.engine.remove_image(&name) {
            Ok(()) | Err(berth_engine::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn image_fs_info(&self) -> pb::ImageFsInfoResponse {
        let fs = self.engine.image_fs();
        let usage = pb::FilesystemUsage {
            timestamp: time::now(),
            fs_id: Some(pb::FilesystemIdentifier {
                mountpoint: fs.path.display().to_string(),
            }),
            used_bytes: Some(pb::UInt64Value {
                value: fs.used_bytes,
            }),
            inodes_used: Some(pb::UInt64Value {
                value: fs.inodes_used,
            }),
        };
        pb::ImageFsInfoResponse {
            image_filesystems: vec![usage.clone()],
            container_filesystems: vec![usage],
        }
    }
}

fn image_name(spec: Option<pb::ImageSpec>) -> Result<String> {
    spec.map(|s| s.image)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Error::InvalidArgument("image spec is missing the image".into()))
}

fn image(v: ImageView) -> pb::Image {
    // The config's User: a number is kubelet's uid, anything else a name (runAsNonRoot
    // checks both).
    let user = v.user.split(':').next().unwrap_or("").to_owned();
    let (uid, username) = match user.parse::<i64>() {
        Ok(n) => (Some(pb::Int64Value { value: n }), String::new()),
        Err(_) if user.is_empty() => (Some(pb::Int64Value { value: 0 }), String::new()),
        Err(_) => (None, user),
    };
    pb::Image {
        id: v.id.clone(),
        repo_tags: v.repo_tags.clone(),
        repo_digests: v.repo_digests.clone(),
        size: v.size,
        uid,
        username,
        spec: Some(pb::ImageSpec {
            image: v.id,
            ..Default::default()
        }),
        pinned: false,
    }
}
