//! The error type of the crate: one variant per way an upload can fail.
//!
//! Every message names the problem and the offending value or limit, so it can be shown to
//! the person who uploaded the file (or logged) as is. [`IngestError::is_permanent`] tells a
//! job queue whether retrying the same bytes could ever succeed.

use std::io;
use std::time::Duration;

use crate::document::{DocumentKind, ImageFormat};

/// Why a file could not be turned into text.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The upload has no bytes at all.
    #[error("the file is empty (0 bytes)")]
    Empty,

    /// The upload is larger than [`crate::Limits::max_file_bytes`].
    #[error("the file is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// Size of the upload in bytes.
        size: u64,
        /// The configured limit in bytes.
        limit: u64,
    },

    /// The bytes are a format this crate does not read; `what` says what they look like
    /// (for example "a GIF image" or "a ZIP archive that is not a DOCX").
    #[error("unsupported file type: the file is {what}")]
    Unsupported {
        /// What the bytes look like.
        what: String,
    },

    /// The bytes look like text, but they decode cleanly in no known encoding.
    #[error("the file is not text in any known encoding: {detail}")]
    UnknownEncoding {
        /// What was tried and why it was rejected.
        detail: String,
    },

    /// The PDF is damaged (truncated, garbage after the header, unreadable xref table...).
    #[error("the PDF is corrupt: {detail}")]
    CorruptPdf {
        /// What poppler reported.
        detail: String,
    },

    /// The PDF needs a password to be opened.
    #[error("the PDF is password-protected (encrypted with a user password): remove the password and upload it again")]
    EncryptedPdf,

    /// The document has more pages than [`crate::Limits::max_pages`].
    #[error("the document has {pages} pages, over the limit of {limit} pages")]
    TooManyPages {
        /// Number of pages in the document.
        pages: u64,
        /// The configured limit.
        limit: u32,
    },

    /// A ZIP container (DOCX) decompresses to more than
    /// [`crate::Limits::max_decompressed_bytes`]: a possible zip bomb.
    #[error(
        "the archive would decompress to more than {limit} bytes ({detail}); refusing it as a possible zip bomb"
    )]
    DecompressedTooLarge {
        /// Which entry (or the whole archive) went over, and by how much.
        detail: String,
        /// The configured limit in bytes.
        limit: u64,
    },

    /// The DOCX container or its XML is broken, or `word/document.xml` is missing.
    #[error("the DOCX is corrupt: {detail}")]
    CorruptDocx {
        /// What is wrong with it.
        detail: String,
    },

    /// The image has more pixels than [`crate::Limits::max_image_pixels`].
    #[error("the {format} image is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels")]
    ImageTooLarge {
        /// Image format.
        format: ImageFormat,
        /// Width in pixels, as declared by the image header.
        width: u32,
        /// Height in pixels, as declared by the image header.
        height: u32,
        /// `width * height`.
        pixels: u64,
        /// The configured limit.
        limit: u64,
    },

    /// The image header cannot be read.
    #[error("the {format} image is corrupt: {detail}")]
    CorruptImage {
        /// Image format, from the magic bytes.
        format: ImageFormat,
        /// What the decoder reported.
        detail: String,
    },

    /// The text is longer than [`crate::Limits::max_text_chars`].
    #[error("the document has {chars} characters of text, over the limit of {limit} characters")]
    TextTooLong {
        /// Number of characters (at least this many; counting may stop early).
        chars: usize,
        /// The configured limit.
        limit: usize,
    },

    /// The document contains no text at all, even after OCR where OCR applies.
    #[error("the {kind} document contains no text{detail}")]
    NoText {
        /// The detected kind.
        kind: DocumentKind,
        /// Extra context, starting with a separator (for example " even after OCR of 3 pages").
        detail: String,
    },

    /// A required external program is not installed (or not on `PATH`).
    #[error("the program `{tool}` is not installed or not on PATH; install it with `{hint}`")]
    ToolMissing {
        /// The program that could not be found.
        tool: String,
        /// How to install it on Debian/Ubuntu.
        hint: String,
    },

    /// Tesseract is installed but has no trained data for the requested language.
    #[error(
        "tesseract has no language data for {language:?} (installed: {installed}); install it with `{hint}`"
    )]
    OcrLanguageMissing {
        /// The requested language, as passed to `tesseract -l`.
        language: String,
        /// The languages tesseract reported.
        installed: String,
        /// How to install it on Debian/Ubuntu.
        hint: String,
    },

    /// An [`crate::IngestOptions`] value is out of range.
    #[error("invalid option {option} = {value:?}: {detail}")]
    InvalidOption {
        /// The field name.
        option: &'static str,
        /// The offending value.
        value: String,
        /// The accepted range.
        detail: String,
    },

    /// An external program ran but failed; `stderr` holds what it printed.
    #[error("`{tool}` failed ({status}) {context}: {stderr}")]
    ToolFailed {
        /// The program.
        tool: String,
        /// Its exit status (for example "exit status: 1" or "signal: 9").
        status: String,
        /// What it was doing (for example "while rendering page 3").
        context: String,
        /// Its standard error, trimmed and truncated.
        stderr: String,
        /// True when the program was killed by a signal (for example by the OOM killer).
        killed_by_signal: bool,
    },

    /// An external program did not finish in time and was killed.
    #[error("`{tool}` did not finish within {timeout:?} {context} and was killed; stderr: {stderr}")]
    Timeout {
        /// The program.
        tool: String,
        /// The timeout that was exceeded.
        timeout: Duration,
        /// What it was doing.
        context: String,
        /// Its standard error up to the kill.
        stderr: String,
    },

    /// An external program could not be started for a reason other than being missing.
    #[error("could not start `{tool}`: {source}")]
    Spawn {
        /// The program.
        tool: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// A local I/O operation (temporary files) failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },
}

impl IngestError {
    /// Whether retrying the same bytes with the same options would fail again.
    ///
    /// Bad input, missing tools and invalid options are permanent. A program that could not be
    /// started for lack of resources, a program killed by a signal, a timeout, and local I/O
    /// errors are not: the machine may be less loaded next time.
    pub fn is_permanent(&self) -> bool {
        match self {
            IngestError::Empty
            | IngestError::FileTooLarge { .. }
            | IngestError::Unsupported { .. }
            | IngestError::UnknownEncoding { .. }
            | IngestError::CorruptPdf { .. }
            | IngestError::EncryptedPdf
            | IngestError::TooManyPages { .. }
            | IngestError::DecompressedTooLarge { .. }
            | IngestError::CorruptDocx { .. }
            | IngestError::ImageTooLarge { .. }
            | IngestError::CorruptImage { .. }
            | IngestError::TextTooLong { .. }
            | IngestError::NoText { .. }
            | IngestError::ToolMissing { .. }
            | IngestError::OcrLanguageMissing { .. }
            | IngestError::InvalidOption { .. } => true,
            IngestError::ToolFailed { killed_by_signal, .. } => !killed_by_signal,
            IngestError::Spawn { source, .. } => !is_resource_exhaustion(source),
            IngestError::Timeout { .. } | IngestError::Io { .. } => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        IngestError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Whether an error from `spawn` means "the machine is out of something right now".
fn is_resource_exhaustion(err: &io::Error) -> bool {
    use io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::OutOfMemory | ErrorKind::ResourceBusy | ErrorKind::Interrupted
    ) {
        return true;
    }
    // EAGAIN, ENOMEM, ENFILE, EMFILE on Linux.
    cfg!(target_os = "linux") && matches!(err.raw_os_error(), Some(11 | 12 | 23 | 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_errors_are_transient_and_missing_programs_permanent() {
        let busy = IngestError::Spawn {
            tool: "tesseract".into(),
            source: io::Error::from_raw_os_error(11),
        };
        assert!(!busy.is_permanent());
        let denied = IngestError::Spawn {
            tool: "tesseract".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(denied.is_permanent());
        let missing = IngestError::ToolMissing {
            tool: "pdftotext".into(),
            hint: "x".into(),
        };
        assert!(missing.is_permanent());
        let timeout = IngestError::Timeout {
            tool: "tesseract".into(),
            timeout: Duration::from_secs(1),
            context: String::new(),
            stderr: String::new(),
        };
        assert!(!timeout.is_permanent());
    }
}
