//! berth's registry client: the OCI distribution-spec (and Docker Registry HTTP API v2) for
//! pull, push, login and search, with the auth flows Docker uses (anonymous, basic, bearer
//! tokens from a token service), per-registry TLS from a certs dir, insecure registries and
//! Docker Hub mirrors.
//!
//! Network I/O is async (reqwest on the daemon's tokio runtime); unpacking runs on blocking
//! threads fed through a bounded channel, so memory stays flat whatever the image's size.

mod auth;
mod error;
mod inspect;
mod options;
mod progress;
mod pull;
mod push;
mod search;
mod transport;

pub use error::{Error, Result};
pub use inspect::Distribution;
pub use options::{Credentials, RegistryOptions};
pub use progress::{NoProgress, Progress, ProgressSink, Step};
pub use pull::{PullOptions, PullOutcome};
pub use push::PushOutcome;
pub use search::{server_domain, SearchResult, DOCKER_HUB_INDEX};
pub use transport::{cause as error_cause, Registries};
