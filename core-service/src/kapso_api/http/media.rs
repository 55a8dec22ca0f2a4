//! Media calls over HTTP: the streamed multipart upload, the media endpoint,
//! and the byte download that follows it.
//!
//! The byte URLs come from Kapso's answer (or a webhook), so they may point
//! anywhere: the API key goes only to Kapso's own hosts (the configured base's
//! origin, or `https://*.kapso.ai`), redirects are followed by hand so the key
//! never rides along to another host, and no URL is written into an error or
//! a log (Meta's and Kapso's download URLs are bearer tokens themselves).

use futures::StreamExt as _;
use reqwest::Url;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use tokio::time::Instant;
use uuid::Uuid;

use super::{HttpKapsoApi, deadline_passed, remaining};
use crate::kapso_api::media::{
    self, FileChunks, MediaBody, MediaMetadata, MediaRef, MediaUpload, UploadBody,
};
use crate::kapso_api::{CallOutcome, Rejection, classify};
use crate::model::MetaError;

/// Redirects followed from a byte URL (a CDN or a signed storage URL).
const MAX_REDIRECTS: usize = 3;

impl HttpKapsoApi {
    /// `POST {base}/{phone_number_id}/media`, the body streamed as it arrives.
    pub(super) async fn upload(
        &self,
        upload: &MediaUpload,
        chunks: FileChunks,
        deadline: Instant,
    ) -> CallOutcome<String> {
        let url = format!("{}/{}/media", self.base_url, upload.phone_number_id);
        let boundary = format!("kapso-gateway-{}", Uuid::new_v4().simple());
        let (body, content_type) = UploadBody::new(upload, chunks, &boundary);
        let length = upload.file_len.map(|len| body.len_with(len));
        let deadline_left = remaining(deadline).unwrap_or_default();
        self.call(
            "upload_media",
            &upload.phone_number_id,
            deadline,
            media::uploaded_id,
            |client, _| {
                // The whole deadline, not the per-request timeout: a file takes as
                // long as its bytes take to come from the caller.
                let mut request = client
                    .post(&url)
                    .timeout(deadline_left)
                    .header(CONTENT_TYPE, content_type);
                if let Some(length) = length {
                    request = request.header(CONTENT_LENGTH, length);
                }
                request.body(reqwest::Body::wrap(body))
            },
        )
        .await
    }

    /// `GET {base}/{media_id}?phone_number_id=...`.
    pub(super) async fn metadata(
        &self,
        media: &MediaRef,
        deadline: Instant,
    ) -> CallOutcome<MediaMetadata> {
        let url = format!("{}/{}", self.base_url, media.media_id);
        self.call(
            "media_metadata",
            &media.phone_number_id,
            deadline,
            media::metadata,
            |client, timeout| {
                client
                    .get(&url)
                    .query(&[("phone_number_id", media.phone_number_id.as_str())])
                    .timeout(timeout)
            },
        )
        .await
    }

    /// Opens the bytes at `url`, following up to [`MAX_REDIRECTS`] redirects.
    pub(super) async fn open(
        &self,
        url: &str,
        phone_number_id: &str,
        deadline: Instant,
    ) -> CallOutcome<MediaBody> {
        let Some(api_key) = &self.api_key else {
            return CallOutcome::Permanent(Rejection::NotConfigured);
        };
        let started = Instant::now();
        let mut current = match Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => parsed,
            _ => return refused("the media's download URL is not an http(s) URL"),
        };
        let mut hops = 0;
        let (http_status, outcome) = loop {
            let Some(left) = remaining(deadline) else {
                break (None, deadline_passed());
            };
            let mut request = self.client.get(current.clone()).timeout(left);
            if self.trusts(&current) {
                request = request.header("X-API-Key", api_key.expose());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => break (None, classify::transport(&error.without_url())),
            };
            let status = response.status();
            if status.is_redirection() && hops < MAX_REDIRECTS {
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|location| current.join(location).ok())
                    .filter(|next| matches!(next.scheme(), "http" | "https"));
                match next {
                    Some(next) => {
                        current = next;
                        hops += 1;
                        continue;
                    }
                    None => {
                        break (
                            Some(status.as_u16()),
                            refused("the media's download redirected nowhere usable"),
                        );
                    }
                }
            }
            if status.is_success() {
                break (Some(status.as_u16()), CallOutcome::Done(body_of(response)));
            }
            break self.answer(response, |_| None::<MediaBody>).await;
        };
        self.counters.record(&outcome);
        super::log_call(
            "download_media",
            phone_number_id,
            http_status,
            &outcome,
            started.elapsed(),
        );
        outcome
    }

    /// Whether `url` is Kapso's, and may carry the key: the configured base's
    /// origin (also a gateway's local stand-in), or an https host of kapso.ai.
    fn trusts(&self, url: &Url) -> bool {
        let same_origin =
            Url::parse(&self.base_url).is_ok_and(|base| base.origin() == url.origin());
        let kapso_host = url.scheme() == "https"
            && url
                .host_str()
                .is_some_and(|host| host == "kapso.ai" || host.ends_with(".kapso.ai"));
        same_origin || kapso_host
    }
}

/// A 2xx response's bytes as a stream; a broken read ends it with its cause,
/// without the URL.
fn body_of(response: reqwest::Response) -> MediaBody {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(CONTENT_TYPE);
    let content_length = response.content_length();
    let chunks = futures::stream::unfold(Some(response), |state| async move {
        let mut response = state?;
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
            Ok(None) => None,
            Err(error) => Some((Err(classify::chain(&error.without_url())), None)),
        }
    })
    .boxed();
    MediaBody {
        content_type,
        content_length,
        chunks,
    }
}

/// A refusal the gateway makes itself about what Kapso sent.
fn refused<T>(why: &str) -> CallOutcome<T> {
    CallOutcome::Permanent(Rejection::Refused {
        http_status: 0,
        error: MetaError {
            code: 0,
            title: "unusable media URL".into(),
            message: why.into(),
            details: String::new(),
        },
    })
}
