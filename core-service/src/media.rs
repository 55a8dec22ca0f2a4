//! Files through Kapso: `UploadMedia` streams a caller's file into WhatsApp's
//! media store and answers its id; `DownloadMedia` streams a message's media
//! (or any media id's) back. Neither holds a whole file: bytes pass through a
//! few chunks at a time, counted against their kind's limit as they pass, so a
//! file over it is stopped at its first byte too many, whatever its sender
//! declared.
//!
//! - [`limits`]: each kind's limit, MIME types and filenames, pure
//! - [`error`]: the boundary error and its gRPC mapping
//! - `upload`: the upload flow
//! - `download`: the download flow

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::kapso_api::KapsoApi;
use crate::outbound::RetryPolicy;
use crate::outbound::request::{non_empty, phone_number_id};
use crate::store::Store;

pub mod error;
pub mod limits;

mod download;
mod upload;

pub use download::DownloadStream;
pub use error::MediaError;

/// How long a media call may take when its caller sets no deadline: a file's
/// bytes move at the speed of both ends, far slower than a send.
pub const MEDIA_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// What the media flows need of the configuration.
#[derive(Debug, Clone, Default)]
pub struct MediaSettings {
    /// Whether a Kapso API key is configured; without one nothing is called.
    pub api_key_configured: bool,
    /// `KAPSO_PHONE_NUMBER_ID`, when set.
    pub default_phone_number_id: Option<String>,
}

/// The media side of the core. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Media {
    api: Arc<dyn KapsoApi>,
    store: Arc<dyn Store>,
    settings: MediaSettings,
    retry: RetryPolicy,
}

impl Media {
    pub fn new(
        api: Arc<dyn KapsoApi>,
        store: Arc<dyn Store>,
        settings: MediaSettings,
        retry: RetryPolicy,
    ) -> Media {
        Media {
            api,
            store,
            settings,
            retry,
        }
    }

    /// `given` when set (and a plain id), else `KAPSO_PHONE_NUMBER_ID`.
    fn phone_number_id(&self, given: &str) -> Result<String, MediaError> {
        let id = non_empty(given).or_else(|| {
            self.settings
                .default_phone_number_id
                .as_deref()
                .and_then(non_empty)
        });
        match id {
            Some(id) => Ok(phone_number_id("phone_number_id", &id)?.to_string()),
            None => Err(MediaError::invalid(
                "phone_number_id",
                "not given, and KAPSO_PHONE_NUMBER_ID is not set",
            )),
        }
    }

    fn require_key(&self) -> Result<(), MediaError> {
        if self.settings.api_key_configured {
            Ok(())
        } else {
            Err(MediaError::NotConfigured)
        }
    }
}

/// The caller's deadline, or [`MEDIA_DEADLINE`] from now.
fn deadline_or_default(deadline: Option<Instant>) -> Instant {
    deadline.unwrap_or_else(|| Instant::now() + MEDIA_DEADLINE)
}
