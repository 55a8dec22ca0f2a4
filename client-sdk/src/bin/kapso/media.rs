//! `kapso media upload|download`: files through the core, streamed. An upload
//! prints the media id to send with `kapso send media --id`; a download
//! writes the bytes to stdout or to a file that appears only when complete.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kapso_client::{Client, Code, MediaInfo, MediaSource, Upload};

use crate::messaging::print_line;

#[derive(Debug, Subcommand)]
pub enum MediaCommand {
    /// Upload a file to WhatsApp through Kapso; prints its media id.
    Upload(UploadArgs),
    /// Download a message's media (or a media id's) to stdout or -o FILE.
    Download(DownloadArgs),
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The file to upload.
    pub file: PathBuf,
    /// Its MIME type (default: from the file's extension, e.g. .pdf is application/pdf).
    #[arg(long)]
    pub mime_type: Option<String>,
    /// The business number the media belongs to (default: the core's).
    #[arg(long)]
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// A stored message (wamid, gateway id or idempotency key), else a media id.
    pub id: String,
    /// Write to this file (created only once the download completed) instead
    /// of stdout; then prints the file's metadata as JSON.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn run(client: &Client, command: MediaCommand) -> anyhow::Result<ExitCode> {
    match command {
        MediaCommand::Upload(args) => upload(client, args).await,
        MediaCommand::Download(args) => download(client, args).await,
    }
}

async fn upload(client: &Client, args: UploadArgs) -> anyhow::Result<ExitCode> {
    let mime_type = match args.mime_type {
        Some(given) => given,
        None => match kapso_client::media::mime_type_of(&args.file) {
            Some(known) => known.to_owned(),
            None => anyhow::bail!(
                "no MIME type known for {}; give --mime-type (e.g. application/pdf)",
                args.file.display()
            ),
        },
    };
    let mut upload = Upload::new(mime_type);
    upload.phone_number_id = args.phone_number_id;
    let uploaded = client.upload_media_file(&args.file, Some(upload)).await?;
    println!("{}", uploaded.id);
    Ok(ExitCode::SUCCESS)
}

async fn download(client: &Client, args: DownloadArgs) -> anyhow::Result<ExitCode> {
    match &args.output {
        None => {
            let mut stdout = tokio::io::stdout();
            fetch(client, &args.id, &mut stdout).await?;
        }
        Some(path) => {
            let info = into_file(client, &args.id, path).await?;
            print_line(&serde_json::json!({
                "file": path.display().to_string(),
                "media_id": info.media_id,
                "mime_type": info.mime_type,
                "size_bytes": info.size_bytes,
                "sha256": info.sha256,
                "filename": info.filename,
                "kind": info.kind().as_str_name(),
            }))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The id as a message first; a media id when no message has it.
async fn fetch<W>(
    client: &Client,
    id: &str,
    writer: &mut W,
) -> Result<MediaInfo, kapso_client::Error>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    match client
        .download_media(MediaSource::Message(id.to_owned()), writer)
        .await
    {
        Err(error) if error.code() == Code::NotFound && looks_like_media_id(id) => {
            client
                .download_media(MediaSource::MediaId(id.to_owned()), writer)
                .await
        }
        other => other,
    }
}

/// Meta's media ids are digits; the core takes letters, digits, `_` and `-`.
fn looks_like_media_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Downloads into a temporary file beside `path`, renamed to it once complete.
async fn into_file(client: &Client, id: &str, path: &Path) -> anyhow::Result<MediaInfo> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut file = tokio::fs::File::create(&partial).await?;
    match fetch(client, id, &mut file).await {
        Ok(info) => {
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&partial, path).await?;
            Ok(info)
        }
        Err(error) => {
            drop(file);
            let _ = tokio::fs::remove_file(&partial).await;
            Err(error.into())
        }
    }
}
