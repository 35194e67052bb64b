//! Options of [`crate::extract`].

use std::time::Duration;

use crate::error::IngestError;
use crate::limits::Limits;

/// How to extract: OCR settings, timeouts and [`Limits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOptions {
    /// Tesseract language(s), `+`-separated (for example `"eng"` or `"eng+deu"`). Default `"eng"`.
    pub ocr_language: String,
    /// Resolution at which PDF pages without a text layer are rendered for OCR. Default 300.
    pub ocr_dpi: u32,
    /// How many pages are OCR'd at once. Default: the number of available cores.
    pub ocr_threads: usize,
    /// Timeout of each external program run (one page rendered, one page OCR'd, one
    /// `pdfinfo`); `pdftotext` over a whole PDF gets this plus one second per page.
    /// Default 120 s.
    pub page_timeout: Duration,
    /// Size limits.
    pub limits: Limits,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            ocr_language: "eng".to_owned(),
            ocr_dpi: 300,
            ocr_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            page_timeout: Duration::from_secs(120),
            limits: Limits::default(),
        }
    }
}

/// Accepted range of [`IngestOptions::ocr_dpi`].
pub const OCR_DPI_RANGE: std::ops::RangeInclusive<u32> = 70..=1200;

impl IngestOptions {
    /// Checks every option, failing with [`IngestError::InvalidOption`] on the first bad one.
    pub fn validate(&self) -> Result<(), IngestError> {
        validate_language(&self.ocr_language)?;
        if !OCR_DPI_RANGE.contains(&self.ocr_dpi) {
            return Err(IngestError::InvalidOption {
                option: "ocr_dpi",
                value: self.ocr_dpi.to_string(),
                detail: format!(
                    "must be between {} and {}",
                    OCR_DPI_RANGE.start(),
                    OCR_DPI_RANGE.end()
                ),
            });
        }
        if self.ocr_threads == 0 {
            return Err(IngestError::InvalidOption {
                option: "ocr_threads",
                value: "0".to_owned(),
                detail: "must be at least 1".to_owned(),
            });
        }
        if self.page_timeout.is_zero() {
            return Err(IngestError::InvalidOption {
                option: "page_timeout",
                value: format!("{:?}", self.page_timeout),
                detail: "must be longer than zero".to_owned(),
            });
        }
        Ok(())
    }
}

/// A tesseract language list is one or more names of letters, digits and `_`, joined by `+`.
pub(crate) fn validate_language(language: &str) -> Result<(), IngestError> {
    let ok = !language.is_empty()
        && language.split('+').all(|part| {
            !part.is_empty()
                && part.len() <= 64
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(IngestError::InvalidOption {
            option: "ocr_language",
            value: language.to_owned(),
            detail: "must be tesseract language names (letters, digits, _) joined by '+', like \"eng+deu\""
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(IngestOptions::default().validate().is_ok());
        let bad = IngestOptions {
            ocr_language: "eng; rm -rf".into(),
            ..IngestOptions::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("ocr_language") && err.contains("rm -rf"), "{err}");
        let bad = IngestOptions {
            ocr_dpi: 5,
            ..IngestOptions::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("ocr_dpi"));
        assert!(validate_language("eng+deu").is_ok());
        assert!(validate_language("eng+").is_err());
    }
}
