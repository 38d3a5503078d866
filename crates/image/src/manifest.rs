//! Manifests and indexes as registries serve them: OCI image-spec and Docker schema2, read
//! leniently (unknown fields ignored) because the bytes, not our model of them, are what the
//! digests name.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// A content descriptor: what a manifest says about a blob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// `os/architecture[/variant]` of an index entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema2).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: u32,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: u32,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// What a manifest document is, from its declared media type or, when it declares none
/// (OCI allows that), from its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Index,
    Schema1,
}

impl Platform {
    /// Parses `os/arch[/variant]`; an empty string means this machine's platform.
    pub fn parse(s: &str) -> Result<Platform> {
        if s.is_empty() {
            return Ok(Platform::host());
        }
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, v] => (*os, *arch, Some(v.to_string())),
            [arch] if *arch != "linux" => ("linux", *arch, None),
            _ => {
                return Err(Error::InvalidOption(format!(
                    "platform {s:?}: want os/arch[/variant]"
                )))
            }
        };
        if os.is_empty() || arch.is_empty() {
            return Err(Error::InvalidOption(format!(
                "platform {s:?}: want os/arch[/variant]"
            )));
        }
        Ok(Platform {
            os: os.to_lowercase(),
            architecture: normalize_arch(arch).to_string(),
            variant,
        })
    }

    /// This machine: `linux/<go arch>`.
    pub fn host() -> Platform {
        Platform {
            os: "linux".to_string(),
            architecture: crate::store::go_arch().to_string(),
            variant: None,
        }
    }

    /// Whether an index entry's platform satisfies this request (a request without a
    /// variant takes any variant, as containerd's default matcher does for arm64).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == normalize_arch(&other.architecture)
            && match (&self.variant, &other.variant) {
                (None, _) => true,
                (Some(a), Some(b)) => a == b,
                (Some(a), None) => a == "v8" && self.architecture == "arm64",
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" => "386",
        other => other,
    }
}

/// Classifies a manifest document (`declared` is the Content-Type the registry sent).
pub fn kind_of(declared: &str, body: &[u8]) -> Result<Kind> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion", default)]
        schema_version: u32,
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(body).map_err(Error::json("manifest"))?;
    let media = if p.media_type.is_empty() {
        declared.split(';').next().unwrap_or("").trim()
    } else {
        p.media_type.as_str()
    };
    Ok(match media {
        OCI_INDEX | DOCKER_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        DOCKER_SCHEMA1_SIGNED | "application/vnd.docker.distribution.manifest.v1+json" => {
            Kind::Schema1
        }
        _ if p.schema_version == 1 => Kind::Schema1,
        _ if p.manifests.is_some() => Kind::Index,
        _ if p.config.is_some() => Kind::Manifest,
        other => {
            return Err(Error::BadArchive(format!(
                "unsupported manifest media type {other:?}"
            )))
        }
    })
}

/// Whether a layer's media type is one berth can unpack (plain, gzip or zstd tar).
pub fn is_layer_media_type(m: &str) -> bool {
    matches!(
        m,
        OCI_LAYER
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | DOCKER_LAYER_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert!(p.matches(&Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into())
        }));
        assert!(Platform::parse("linux/").is_err());
        assert_eq!(Platform::parse("").unwrap(), Platform::host());
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!v7.matches(&Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v6".into())
        }));
    }

    #[test]
    fn kinds_from_media_type_or_shape() {
        assert_eq!(
            kind_of("", br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            Kind::Index
        );
        assert_eq!(
            kind_of(DOCKER_MANIFEST, br#"{"schemaVersion":2,"config":{}}"#).unwrap(),
            Kind::Manifest
        );
        assert_eq!(
            kind_of("", br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap(),
            Kind::Schema1
        );
        assert!(kind_of("", b"not json").is_err());
    }
}
