//! What may be uploaded and downloaded, pure: each kind's size limit, the kind
//! a MIME type implies, and the MIME type and filename as they may appear in
//! a multipart header.
//!
//! The limits are Meta's (docs/kapso-contract.md, 4.4), in binary units: Meta
//! writes "5 MB", and the gateway refuses only what is over 5 MiB, leaving the
//! last word on the few bytes between to Meta.

use std::fmt;

/// A file's kind, as Meta sizes and sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Video,
    Audio,
    Document,
    /// Static stickers may be 100 KiB and animated ones 500 KiB; a file does
    /// not say which it is, so the larger bound applies and Meta refuses a
    /// static sticker between the two.
    Sticker,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

impl Kind {
    /// The largest file Meta takes for this kind.
    pub fn limit(self) -> u64 {
        match self {
            Kind::Image => 5 * MIB,
            Kind::Video | Kind::Audio => 16 * MIB,
            Kind::Document => 100 * MIB,
            Kind::Sticker => 500 * KIB,
        }
    }

    /// The kind a MIME type implies: `image/webp` is a sticker (WhatsApp takes
    /// WebP only as one), other `image/*` an image, `video/*` and `audio/*`
    /// what they say, anything else a document.
    pub fn of_mime(mime: &MimeType) -> Kind {
        let essence = mime.essence();
        match essence.split_once('/').map(|(top, _)| top) {
            _ if essence == "image/webp" => Kind::Sticker,
            Some("image") => Kind::Image,
            Some("video") => Kind::Video,
            Some("audio") => Kind::Audio,
            _ => Kind::Document,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Document => "document",
            Kind::Sticker => "sticker",
        }
    }
}

/// A size in bytes, written the way people read limits (`5 MiB`, `500 KiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= KIB && n % KIB == 0 => write!(f, "{} KiB", n / KIB),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// Counts a file's bytes against its kind's limit as they pass.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    kind: Kind,
    seen: u64,
}

/// A file over its kind's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a {} may be at most {} (Meta's limit); {}",
    kind.as_str(),
    Size(kind.limit()),
    what(*declared, *seen)
)]
pub struct OverLimit {
    pub kind: Kind,
    /// The bytes declared, or counted when the limit was passed.
    pub seen: u64,
    /// Whether `seen` was declared rather than counted.
    pub declared: bool,
}

/// A declared size is known whole; a stream is stopped at its first byte too many.
fn what(declared: bool, seen: u64) -> String {
    if declared {
        format!("this one is {}", Size(seen))
    } else {
        format!("this one passed it at byte {seen}")
    }
}

impl Budget {
    pub fn new(kind: Kind) -> Budget {
        Budget { kind, seen: 0 }
    }

    /// Checks a declared size before any byte moves.
    pub fn check_declared(kind: Kind, size: u64) -> Result<(), OverLimit> {
        if size > kind.limit() {
            return Err(OverLimit {
                kind,
                seen: size,
                declared: true,
            });
        }
        Ok(())
    }

    /// Counts `len` more bytes; an error as soon as the total passes the limit.
    pub fn take(&mut self, len: usize) -> Result<(), OverLimit> {
        self.seen = self.seen.saturating_add(len as u64);
        if self.seen > self.kind.limit() {
            return Err(OverLimit {
                kind: self.kind,
                seen: self.seen,
                declared: false,
            });
        }
        Ok(())
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// A MIME type fit to send in a multipart header: `type/subtype` of RFC 6838
/// token characters, parameters allowed (`audio/ogg; codecs=opus`), nothing
/// that could end the header or start another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeType(String);

impl MimeType {
    pub fn parse(raw: &str) -> Option<MimeType> {
        let raw = raw.trim();
        let (essence, params) = raw.split_once(';').unwrap_or((raw, ""));
        let (top, sub) = essence.trim().split_once('/')?;
        let token = |s: &str| {
            !s.is_empty()
                && s.len() <= 127
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        let params_plain = params
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        (token(top) && token(sub) && params_plain && raw.len() <= 255)
            .then(|| MimeType(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `type/subtype` in lower case, without parameters.
    pub fn essence(&self) -> String {
        self.0
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }
}

/// Longest filename accepted: Meta's limit on a document's filename.
pub const MAX_FILENAME: usize = 240;

/// A filename fit for a multipart header: 1 to 240 characters, no control
/// characters; `"` and `\` are percent-encoded as browsers send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filename(String);

impl Filename {
    pub fn parse(raw: &str) -> Option<Filename> {
        let count = raw.chars().count();
        let plain = (1..=MAX_FILENAME).contains(&count) && !raw.chars().any(char::is_control);
        plain.then(|| Filename(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as it goes between the quotes of `filename="..."`.
    pub fn quoted(&self) -> String {
        self.0
            .replace('%', "%25")
            .replace('"', "%22")
            .replace('\\', "%5C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mime(raw: &str) -> MimeType {
        MimeType::parse(raw).unwrap()
    }

    #[test]
    fn limits_are_metas_per_kind() {
        assert_eq!(Kind::Image.limit(), 5 * 1024 * 1024);
        assert_eq!(Kind::Video.limit(), 16 * 1024 * 1024);
        assert_eq!(Kind::Audio.limit(), 16 * 1024 * 1024);
        assert_eq!(Kind::Document.limit(), 100 * 1024 * 1024);
        assert_eq!(Kind::Sticker.limit(), 500 * 1024);
    }

    #[test]
    fn the_kind_follows_the_mime_type_and_webp_is_a_sticker() {
        for (raw, kind) in [
            ("image/jpeg", Kind::Image),
            ("IMAGE/PNG", Kind::Image),
            ("image/webp", Kind::Sticker),
            ("video/mp4", Kind::Video),
            ("audio/ogg; codecs=opus", Kind::Audio),
            ("application/pdf", Kind::Document),
            ("text/plain", Kind::Document),
        ] {
            assert_eq!(Kind::of_mime(&mime(raw)), kind, "{raw}");
        }
    }

    #[test]
    fn a_budget_fails_at_the_first_byte_over_the_limit() {
        let mut budget = Budget::new(Kind::Sticker);
        budget.take(500 * 1024 - 1).unwrap();
        budget.take(1).unwrap();
        let over = budget.take(1).unwrap_err();
        assert_eq!(over.seen, 500 * 1024 + 1);
        assert!(Budget::check_declared(Kind::Image, 5 * 1024 * 1024).is_ok());
        let declared = Budget::check_declared(Kind::Image, 6 * 1024 * 1024).unwrap_err();
        let text = declared.to_string();
        assert!(text.contains("image") && text.contains("5 MiB"), "{text}");
    }

    #[test]
    fn mime_types_cannot_break_out_of_their_header() {
        for good in [
            "image/jpeg",
            "audio/ogg; codecs=opus",
            "application/vnd.ms-excel",
        ] {
            assert_eq!(mime(good).as_str(), good);
        }
        for bad in [
            "",
            "jpeg",
            "image/",
            "/jpeg",
            "image/jpeg\r\nX-Evil: 1",
            "image/jpeg; name=\"x\"",
            "ímage/jpeg",
            "image /jpeg",
        ] {
            assert!(MimeType::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn filenames_are_quoted_and_control_characters_refused() {
        assert_eq!(
            Filename::parse(r#"la "boleta" 100%\1.pdf"#)
                .unwrap()
                .quoted(),
            "la %22boleta%22 100%25%5C1.pdf"
        );
        assert_eq!(
            Filename::parse("boleta.pdf").unwrap().quoted(),
            "boleta.pdf"
        );
        for bad in ["", "a\r\nb.pdf", "tab\t.pdf", &"x".repeat(MAX_FILENAME + 1)] {
            assert!(Filename::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(Size(5 * 1024 * 1024).to_string(), "5 MiB");
        assert_eq!(Size(500 * 1024).to_string(), "500 KiB");
        assert_eq!(Size(1000).to_string(), "1000 bytes");
    }
}
