//! What a registry says an image is, without pulling it: the descriptor its reference
//! resolves to and the platforms it has (`GET /distribution/{name}/json`, docker-py's
//! `images.get_registry_data`).

use berth_image::manifest::{kind_of, Index, Kind, Manifest, Platform};
use berth_image::{ImageConfig, Reference};
use serde::Serialize;

use crate::error::Result;
use crate::options::Credentials;
use crate::pull::bad;
use crate::transport::Registries;

/// A config larger than this is refused, as a pull refuses it.
const MAX_CONFIG: u64 = 32 << 20;

/// dockerd's `DistributionInspect`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Distribution {
    #[serde(rename = "Descriptor")]
    pub descriptor: DescriptorOut,
    #[serde(rename = "Platforms")]
    pub platforms: Vec<Platform>,
}

/// The top manifest's descriptor, as the registry served it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DescriptorOut {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Registries {
    /// The descriptor `reference` resolves to and its platforms: every entry's of an index,
    /// else the image config's. A Docker Hub name asks the mirrors first, as a pull does.
    pub async fn distribution(
        &self,
        reference: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<Distribution> {
        self.mirrors_first(reference, "look up", |base| async move {
            self.distribution_from(reference, base.as_deref(), creds)
                .await
        })
        .await
    }

    async fn distribution_from(
        &self,
        reference: &Reference,
        base: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Result<Distribution> {
        let image = reference.familiar();
        let s = self.pull_session(reference, base, creds, &image).await?;
        let top = self.top_manifest(&s, reference).await?;
        let platforms = match kind_of(&top.media_type, &top.bytes).map_err(bad(&image))? {
            Kind::Index => {
                let idx: Index = serde_json::from_slice(&top.bytes).map_err(bad(&image))?;
                idx.manifests
                    .into_iter()
                    .filter_map(|d| d.platform)
                    .collect()
            }
            Kind::Manifest => {
                let m: Manifest = serde_json::from_slice(&top.bytes).map_err(bad(&image))?;
                let config = self.small_blob(&s, &m.config, MAX_CONFIG).await?;
                let cfg: ImageConfig = serde_json::from_slice(&config).map_err(bad(&image))?;
                vec![Platform {
                    os: cfg.os,
                    architecture: cfg.architecture,
                    variant: cfg
                        .extra
                        .get("variant")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                }]
            }
            Kind::Schema1 => Vec::new(),
        };
        Ok(Distribution {
            descriptor: DescriptorOut {
                media_type: top.media_type,
                size: top.bytes.len() as u64,
                digest: top.digest,
            },
            platforms,
        })
    }
}
