//! The API version a request asked for (`/v1.41/images/x/json`), so that each answer has the
//! fields dockerd gives that version (its API changelog): clients written against an older
//! version read fields a newer one dropped (docker-compose 1.29 reads an image's
//! `ContainerConfig`, gone since 1.45).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;

/// `1.MINOR` (every Engine API version so far has major 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    /// The newest version berth speaks, which a request without a version gets (as dockerd).
    pub const CURRENT: ApiVersion = ApiVersion {
        major: 1,
        minor: 47,
    };
    /// The oldest version berth answers (dockerd's minimum since 25.0).
    pub const MIN: ApiVersion = ApiVersion {
        major: 1,
        minor: 24,
    };

    /// `"1.41"` → 1.41; None for anything else.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (major, minor) = s.split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// Whether the request asked for a version older than `1.minor`.
    pub fn before(self, minor: u32) -> bool {
        self < ApiVersion { major: 1, minor }
    }

    /// dockerd's refusal of a version out of its range, in its words.
    pub fn check(self) -> Result<(), ApiError> {
        if self < ApiVersion::MIN {
            return Err(ApiError::BadRequest(format!(
                "client version {self} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                ApiVersion::MIN
            )));
        }
        if self > ApiVersion::CURRENT {
            return Err(ApiError::BadRequest(format!(
                "client version {self} is too new. Maximum supported API version is {}",
                ApiVersion::CURRENT
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ApiVersion, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(ApiVersion::CURRENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        let v = |s| ApiVersion::parse(s).unwrap_or(ApiVersion::CURRENT);
        assert!(v("1.9") < v("1.24"));
        assert!(v("1.41").before(45));
        assert!(!v("1.45").before(45));
        assert!(v("1.23").check().is_err());
        assert!(v("1.24").check().is_ok());
        assert!(v("1.47").check().is_ok());
        assert!(v("1.48").check().is_err());
        assert_eq!(ApiVersion::parse("1.x"), None);
        assert_eq!(v("1.41").to_string(), "1.41");
    }

    #[test]
    fn the_range_is_the_one_the_api_announces() {
        assert_eq!(ApiVersion::CURRENT.to_string(), super::super::API_VERSION);
        assert_eq!(ApiVersion::MIN.to_string(), super::super::MIN_API_VERSION);
    }
}
