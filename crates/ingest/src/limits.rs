//! Resource limits applied to every upload, and the helpers that enforce them.

use std::io::{self, Read};

use crate::error::IngestError;

/// Hard limits that protect the service from hostile or accidental huge inputs.
///
/// Each limit is checked as early as possible: file size before anything else, page count
/// from the PDF header before any text is extracted, image dimensions from the image header
/// before any pixel is decoded, ZIP sizes both as declared and as actually inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted upload, in bytes. Default 50 MiB.
    pub max_file_bytes: u64,
    /// Most pages accepted in a paginated document (PDF, DOCX with page breaks, text with
    /// form feeds). Default 500.
    pub max_pages: u32,
    /// Most bytes a ZIP container (DOCX) may inflate to, summed over the entries read and over
    /// the sizes the archive declares. Default 100 MiB.
    pub max_decompressed_bytes: u64,
    /// Most pixels (width x height) of an image to OCR, and of a PDF page rendered for OCR
    /// (larger pages are rendered at a lower resolution). Default 40 megapixels.
    pub max_image_pixels: u64,
    /// Most characters of extracted text. Default 20 million.
    pub max_text_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 50 * 1024 * 1024,
            max_pages: 500,
            max_decompressed_bytes: 100 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            max_text_chars: 20_000_000,
        }
    }
}

impl Limits {
    /// Fails with [`IngestError::FileTooLarge`] when `len` is over [`Limits::max_file_bytes`].
    pub(crate) fn check_file_size(&self, len: usize) -> Result<(), IngestError> {
        let size = len as u64;
        if size > self.max_file_bytes {
            return Err(IngestError::FileTooLarge {
                size,
                limit: self.max_file_bytes,
            });
        }
        Ok(())
    }

    /// Fails with [`IngestError::TooManyPages`] when `pages` is over [`Limits::max_pages`].
    pub(crate) fn check_pages(&self, pages: u64) -> Result<(), IngestError> {
        if pages > u64::from(self.max_pages) {
            return Err(IngestError::TooManyPages {
                pages,
                limit: self.max_pages,
            });
        }
        Ok(())
    }

    /// Fails with [`IngestError::TextTooLong`] when `text` has more than
    /// [`Limits::max_text_chars`] characters. Stops counting just past the limit.
    pub(crate) fn check_text_len(&self, text: &str) -> Result<(), IngestError> {
        // Byte length is an upper bound of the char count: skip counting in the common case.
        if text.len() <= self.max_text_chars {
            return Ok(());
        }
        let chars = text.chars().take(self.max_text_chars.saturating_add(1)).count();
        if chars > self.max_text_chars {
            return Err(IngestError::TextTooLong {
                chars: text.chars().count(),
                limit: self.max_text_chars,
            });
        }
        Ok(())
    }
}

/// A reader that counts the bytes it yields against a shared budget and fails with an
/// [`io::ErrorKind::FileTooLarge`] error as soon as the budget is exceeded, so a decompression
/// bomb is stopped after at most `budget + buffer` bytes, whatever its headers claim.
pub(crate) struct BudgetReader<'a, R> {
    inner: R,
    remaining: &'a mut u64,
}

impl<'a, R: Read> BudgetReader<'a, R> {
    pub(crate) fn new(inner: R, remaining: &'a mut u64) -> Self {
        BudgetReader { inner, remaining }
    }
}

impl<R: Read> Read for BudgetReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = n as u64;
        if n64 > *self.remaining {
            *self.remaining = 0;
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "decompression budget exceeded",
            ));
        }
        *self.remaining -= n64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_reader_stops_at_the_budget() {
        let data = vec![7u8; 10_000];
        let mut budget = 4_096;
        let mut reader = BudgetReader::new(&data[..], &mut budget);
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(out.len() <= 4_096);
    }

    #[test]
    fn text_length_limit_counts_chars_not_bytes() {
        let limits = Limits {
            max_text_chars: 3,
            ..Limits::default()
        };
        assert!(limits.check_text_len("éèà").is_ok());
        assert!(matches!(
            limits.check_text_len("abcd"),
            Err(IngestError::TextTooLong { chars: 4, limit: 3 })
        ));
    }
}
