//! The webhook hot path without I/O: signature verification plus parsing, per
//! fixture and for a 1 KB body (target: under 5 µs).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kapso_adapter::webhook::{self, Hints};
use kapso_signature::{self as signature, WebhookSecrets};

const SECRET: &str = "bench-secret-not-real";

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// A received text event padded to exactly 1024 bytes with a longer message body.
fn one_kilobyte_body() -> Vec<u8> {
    let template = |pad: &str| {
        format!(
            r#"{{"message":{{"id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1730092800","type":"text","from":"15551234567","text":{{"body":"{pad}"}},"kapso":{{"direction":"inbound","status":"received","processing_status":"pending","origin":"cloud_api","has_media":false,"content":"hello"}}}},"conversation":{{"id":"conv_123","phone_number":"+15551234567","status":"active","last_active_at":"2025-10-28T14:25:01Z","created_at":"2025-10-28T13:40:00Z","updated_at":"2025-10-28T14:25:01Z","metadata":{{}},"phone_number_id":"123456789012345"}},"is_new_conversation":true,"phone_number_id":"123456789012345"}}"#
        )
    };
    let base = template("").len();
    let body = template(&"x".repeat(1024 - base));
    assert_eq!(body.len(), 1024);
    body.into_bytes()
}

fn hints_for(name: &str) -> Hints<'static> {
    Hints {
        // As the fixtures README says to send each file.
        event_type: match name {
            "sent" => Some("whatsapp.message.sent"),
            "delivered" => Some("whatsapp.message.delivered"),
            "read" => Some("whatsapp.message.read"),
            "failed" => Some("whatsapp.message.failed"),
            "conversation_created" => Some("whatsapp.conversation.created"),
            "conversation_ended" => Some("whatsapp.conversation.ended"),
            "conversation_inactive" => Some("whatsapp.conversation.inactive"),
            "meta_text" => None,
            _ => Some("whatsapp.message.received"),
        },
        batch: name.contains("batch"),
    }
}

fn verify_and_parse(c: &mut Criterion) {
    let secrets: WebhookSecrets = SECRET.parse().unwrap();
    let mut bodies = fixtures();
    bodies.push(("1kb_text".to_owned(), one_kilobyte_body()));

    let mut group = c.benchmark_group("verify_and_parse");
    for (name, body) in &bodies {
        let header = signature::sign(SECRET, body);
        let hints = hints_for(name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                signature::verify(&secrets, Some(header.as_bytes()), black_box(body)).unwrap();
                webhook::parse(black_box(body), hints).unwrap()
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_only");
    for (name, body) in &bodies {
        let hints = hints_for(name);
        group.bench_function(name.as_str(), |b| {
            b.iter(|| webhook::parse(black_box(body), hints).unwrap())
        });
    }
    group.finish();

    let body = one_kilobyte_body();
    let header = signature::sign(SECRET, &body);
    c.bench_function("verify_only/1kb", |b| {
        b.iter(|| signature::verify(&secrets, Some(header.as_bytes()), black_box(&body)))
    });
}

criterion_group!(benches, verify_and_parse);
criterion_main!(benches);
