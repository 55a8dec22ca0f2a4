//! `kapso webhook send`: what the original service's `test_webhook.py
//! --with-signature` and its curl recipe did, with the headers Kapso sends today.
//!
//! The body is read once and sent byte for byte as signed: no JSON
//! re-serialisation, no trimmed trailing newline.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use kapso_client::webhook::{DEFAULT_EVENT, WebhookRequest, batch_size};

use crate::cli::WebhookSendArgs;

pub async fn send(args: WebhookSendArgs) -> anyhow::Result<ExitCode> {
    let body = read_body(&args.file)?;
    let request = build(&args, body)?;
    let headers = headers(&args, &request);

    if args.print_curl {
        println!("{}", curl_command(&args.url, &headers, &args.file));
        return Ok(ExitCode::SUCCESS);
    }

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()
        .context("building the HTTP client")?;
    let mut post = http.post(&args.url);
    for (name, value) in &headers {
        post = post.header(name, value);
    }
    let response = post
        .body(request.body)
        .send()
        .await
        .with_context(|| format!("POST {}", args.url))?;
    let status = response.status();
    let text = response.text().await.context("reading the response body")?;
    println!("HTTP {status}");
    println!("{text}");
    if status.is_success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("kapso: the webhook was answered {status}");
    if status == reqwest::StatusCode::UNAUTHORIZED {
        eprintln!(
            "kapso: 401 means the signature did not verify: --secret (KAPSO_WEBHOOK_SECRET) differs from the adapter's"
        );
    }
    Ok(ExitCode::FAILURE)
}

fn read_body(file: &str) -> anyhow::Result<Vec<u8>> {
    if file == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .context("reading the body from standard input")?;
        return Ok(body);
    }
    std::fs::read(file).with_context(|| format!("reading {file}"))
}

fn build(args: &WebhookSendArgs, body: Vec<u8>) -> anyhow::Result<WebhookRequest> {
    let counted = batch_size(&body);
    let event = match &args.event {
        Some(event) => event.clone(),
        None => event_of(&body).unwrap_or_else(|| DEFAULT_EVENT.to_owned()),
    };
    let mut request = WebhookRequest::new(body).event(event);
    if let Some(key) = &args.idempotency_key {
        request = request.idempotency_key(key);
    }
    if args.batch || args.batch_size.is_some() {
        let size = args.batch_size.or(counted).context(
            "cannot count the batch items (no data[] and not an array): pass --batch-size",
        )?;
        request = request.batch(size);
    }
    Ok(request)
}

/// The body's own event type (`{"type": "whatsapp.message.received", ...}`),
/// so a saved delivery replays under the header it came with.
fn event_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

/// Kapso's headers with the chosen payload version, then the extra ones.
fn headers(args: &WebhookSendArgs, request: &WebhookRequest) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers(args.secret.expose())
        .into_iter()
        .map(|(name, value)| match name {
            "X-Webhook-Payload-Version" => (name.to_owned(), args.payload_version.clone()),
            _ => (name.to_owned(), value),
        })
        .collect();
    headers.extend(
        args.headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone())),
    );
    headers
}

/// `-H NAME:VALUE`: a header sent as given, after Kapso's.
#[derive(Debug, Clone)]
pub struct ExtraHeader {
    name: String,
    value: String,
}

impl std::str::FromStr for ExtraHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not NAME:VALUE"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("{s:?} has no header name"));
        }
        Ok(ExtraHeader {
            name: name.to_owned(),
            value: value.trim().to_owned(),
        })
    }
}

/// The same request as a shell command, for the troubleshooting guide's curl recipe.
fn curl_command(url: &str, headers: &[(String, String)], file: &str) -> String {
    let mut command = format!("curl -i -X POST {}", shell_quote(url));
    for (name, value) in headers {
        command.push_str(&format!(
            " \\\n  -H {}",
            shell_quote(&format!("{name}: {value}"))
        ));
    }
    // `@file` sends the bytes as they are; `-d` would strip newlines and break the signature.
    let data = if file == "-" {
        "@-".to_owned()
    } else {
        format!("@{file}")
    };
    command.push_str(&format!(" \\\n  --data-binary {}", shell_quote(&data)));
    command
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_command_quotes_and_sends_the_file_verbatim() {
        let headers = [("X-Webhook-Event".to_owned(), "it's".to_owned())];
        let command = curl_command("http://h/x", &headers, "body.json");
        assert!(command.starts_with("curl -i -X POST 'http://h/x'"));
        assert!(command.contains(r"-H 'X-Webhook-Event: it'\''s'"));
        assert!(command.ends_with("--data-binary '@body.json'"));
    }
}
