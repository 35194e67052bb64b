//! PDF: page count, encryption and title from `pdfinfo`; the text layer from `pdftotext`
//! (pages split at form feeds); pages without a usable text layer rendered with `pdftoppm`
//! and OCR'd with tesseract, several at once.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::document::{DocumentKind, ExtractedDocument, OcrStats, Page};
use crate::error::IngestError;
use crate::ocr::{self, OcrJob};
use crate::options::IngestOptions;
use crate::process::{quote_stderr, Output, Run, Tool, PDFINFO, PDFTOPPM, PDFTOTEXT};
use crate::text::normalize_multiline;

/// A page whose text layer has fewer non-whitespace characters than this is OCR'd.
pub const MIN_TEXT_LAYER_CHARS: usize = 20;

/// The lowest resolution a page is rendered at when the pixel limit forces a lower one.
const MIN_RENDER_DPI: u32 = 50;

/// What `pdfinfo` says about the document.
#[derive(Debug, Clone, PartialEq)]
struct PdfInfo {
    pages: u32,
    title: Option<String>,
    /// `Some("yes (print:yes copy:no ...)")` when encrypted (and openable without password).
    encryption: Option<String>,
}

/// Runs a poppler program; a failure to open the file becomes [`IngestError::EncryptedPdf`] or
/// [`IngestError::CorruptPdf`].
fn run_poppler(
    tool: Tool,
    args: Vec<&OsStr>,
    timeout: Duration,
    max_stdout: usize,
    text_limit: Option<usize>,
    context: &str,
) -> Result<Output, IngestError> {
    let output = Run {
        tool,
        args,
        env: Vec::new(),
        timeout,
        max_stdout,
        context: context.to_owned(),
    }
    .output()?;
    let output = output.map_err(|overflow| match text_limit {
        // Text beyond what the character limit allows (4 bytes per char at most, plus slack)
        // is a decompression bomb in disguise: pdftotext was stopped early.
        Some(limit) => IngestError::TextTooLong {
            chars: overflow.bytes_read / 4,
            limit,
        },
        None => IngestError::ToolFailed {
            tool: tool.name.to_owned(),
            status: format!("killed after more than {} bytes of output", overflow.bytes_read),
            context: context.to_owned(),
            stderr: String::new(),
            killed_by_signal: false,
        },
    })?;
    if output.status.success() {
        return Ok(output);
    }
    if output.stderr.contains("Incorrect password") {
        return Err(IngestError::EncryptedPdf);
    }
    match output.status.code() {
        // poppler: 1 = error opening the PDF, 3 = permission error.
        Some(1) | Some(3) => Err(IngestError::CorruptPdf {
            detail: format!("{} {context}: {}", tool.name, quote_stderr(&output.stderr)),
        }),
        _ => output.success(tool, context),
    }
}

fn parse_info(stdout: &str) -> Result<PdfInfo, IngestError> {
    let field = |name: &str| {
        stdout.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(':')
                .map(|v| v.trim().to_owned())
        })
    };
    let pages = field("Pages")
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(|| IngestError::CorruptPdf {
            detail: "pdfinfo reports no page count".to_owned(),
        })?;
    if pages == 0 {
        return Err(IngestError::CorruptPdf {
            detail: "the PDF has no pages".to_owned(),
        });
    }
    let title = field("Title").filter(|t| !t.is_empty());
    let encryption = field("Encrypted").filter(|e| e.starts_with("yes"));
    Ok(PdfInfo {
        pages,
        title,
        encryption,
    })
}

/// Page sizes in points, from `pdfinfo -f 1 -l N`.
fn parse_page_sizes(stdout: &str) -> HashMap<u32, (f64, f64)> {
    let mut sizes = HashMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("Page") else {
            continue;
        };
        let Some((number, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Some(dims) = rest.trim_start().strip_prefix("size:") else {
            continue;
        };
        let mut parts = dims.split_whitespace();
        let (Some(w), Some("x"), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(n), Ok(w), Ok(h)) = (number.parse::<u32>(), w.parse::<f64>(), h.parse::<f64>()) {
            sizes.insert(n, (w, h));
        }
    }
    sizes
}

/// Highest resolution, at most `dpi`, at which a `width_pt` x `height_pt` page stays under
/// `max_pixels`.
fn render_dpi(dpi: u32, size: Option<(f64, f64)>, max_pixels: u64) -> u32 {
    let Some((w, h)) = size else { return dpi };
    let pixels_at = |d: f64| (w / 72.0 * d).ceil() * (h / 72.0 * d).ceil();
    if pixels_at(f64::from(dpi)) <= max_pixels as f64 {
        return dpi;
    }
    let scale = (max_pixels as f64 / pixels_at(f64::from(dpi))).sqrt();
    let mut lower = (f64::from(dpi) * scale).floor() as u32;
    while lower > 1 && pixels_at(f64::from(lower)) > max_pixels as f64 {
        lower -= 1;
    }
    lower
}

fn non_space_chars(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Distinct poppler complaints (exit status 0) worth a warning.
fn poppler_warnings(tool: &str, stderr: &str, warnings: &mut Vec<String>) {
    let mut lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.dedup();
    if let Some(first) = lines.first() {
        let more = if lines.len() > 1 {
            format!(" (and {} more messages)", lines.len() - 1)
        } else {
            String::new()
        };
        warnings.push(format!("{tool} reported problems in the PDF: {first}{more}"));
    }
}

pub(crate) fn extract_pdf(bytes: &[u8], options: &IngestOptions) -> Result<ExtractedDocument, IngestError> {
    let limits = &options.limits;
    let dir = tempfile::Builder::new()
        .prefix("learnflow-ingest-")
        .tempdir()
        .map_err(|e| IngestError::io("creating a temporary directory", e))?;
    let input = dir.path().join("input.pdf");
    std::fs::write(&input, bytes).map_err(|e| IngestError::io("writing the PDF to a temporary file", e))?;
    let mut warnings = Vec::new();

    let info_out = run_poppler(
        PDFINFO,
        vec![OsStr::new("-enc"), OsStr::new("UTF-8"), input.as_os_str()],
        options.page_timeout,
        1024 * 1024,
        None,
        "while reading the document information",
    )?;
    let info = parse_info(&String::from_utf8_lossy(&info_out.stdout))?;
    limits.check_pages(u64::from(info.pages))?;
    if let Some(encryption) = &info.encryption {
        warnings.push(format!(
            "the PDF is encrypted without a user password ({encryption}); its text was extracted anyway"
        ));
    }
    tracing::debug!(pages = info.pages, title = ?info.title, "pdf opened");

    let max_stdout = limits
        .max_text_chars
        .saturating_mul(4)
        .saturating_add(1024 * 1024);
    let text_out = run_poppler(
        PDFTOTEXT,
        vec![
            OsStr::new("-enc"),
            OsStr::new("UTF-8"),
            OsStr::new("-eol"),
            OsStr::new("unix"),
            input.as_os_str(),
            OsStr::new("-"),
        ],
        options
            .page_timeout
            .saturating_add(Duration::from_secs(u64::from(info.pages))),
        max_stdout,
        Some(limits.max_text_chars),
        "while extracting the text layer",
    )?;
    poppler_warnings("pdftotext", &text_out.stderr, &mut warnings);
    let raw = String::from_utf8_lossy(&text_out.stdout);
    let mut layer: Vec<String> = raw
        .split('\x0c')
        .take(info.pages as usize)
        .map(|t| normalize_multiline(t, true))
        .collect();
    if layer.len() < info.pages as usize {
        warnings.push(format!(
            "pdftotext returned {} pages of text for a {}-page PDF; the missing pages are treated as having no text layer",
            layer.len(),
            info.pages
        ));
        layer.resize(info.pages as usize, String::new());
    }

    let needs_ocr: Vec<u32> = (1..=info.pages)
        .filter(|&n| non_space_chars(&layer[n as usize - 1]) < MIN_TEXT_LAYER_CHARS)
        .collect();
    let mut ocr_texts: HashMap<u32, String> = HashMap::new();
    let mut ocr_stats: Option<OcrStats> = None;
    if !needs_ocr.is_empty() {
        ocr::ocr_available(&options.ocr_language)?;
        let last_page = info.pages.to_string();
        let sizes_out = run_poppler(
            PDFINFO,
            vec![
                OsStr::new("-f"),
                OsStr::new("1"),
                OsStr::new("-l"),
                OsStr::new(&last_page),
                input.as_os_str(),
            ],
            options.page_timeout,
            4 * 1024 * 1024,
            None,
            "while reading page sizes",
        )?;
        let sizes = parse_page_sizes(&String::from_utf8_lossy(&sizes_out.stdout));
        let plans: Vec<(u32, u32)> = needs_ocr
            .iter()
            .map(|&n| {
                (
                    n,
                    render_dpi(options.ocr_dpi, sizes.get(&n).copied(), limits.max_image_pixels),
                )
            })
            .collect();
        for &(page, dpi) in &plans {
            if dpi < options.ocr_dpi {
                warnings.push(format!(
                    "page {page} was rendered at {dpi} dpi instead of {} to stay under {} pixels",
                    options.ocr_dpi, limits.max_image_pixels
                ));
            }
        }
        let plans: Vec<(u32, u32)> = plans
            .into_iter()
            .filter(|&(page, dpi)| {
                if dpi < MIN_RENDER_DPI {
                    warnings.push(format!("page {page} is too large to render for OCR"));
                    false
                } else {
                    true
                }
            })
            .collect();
        let threads = options.ocr_threads.min(plans.len()).max(1);
        tracing::debug!(pages = plans.len(), threads, "ocr of pages without a text layer");
        let started = std::time::Instant::now();
        let (texts, peak_parallel) = ocr::parallel_map(&plans, threads, |&(page, dpi)| {
            ocr::timed_page(page, || {
                ocr_page(&input, dir.path(), page, dpi, threads > 1, options)
            })
        })?;
        ocr_stats = Some(OcrStats {
            pages: u32::try_from(plans.len()).unwrap_or(u32::MAX),
            seconds: started.elapsed().as_secs_f64(),
            peak_parallel,
        });
        for (&(page, _), text) in plans.iter().zip(texts) {
            ocr_texts.insert(page, text);
        }
    }

    let mut pages = Vec::with_capacity(info.pages as usize);
    let mut ocr_pages = Vec::new();
    for (index, layer_text) in layer.into_iter().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let text = match ocr_texts.remove(&number) {
            Some(ocr_text) if non_space_chars(&ocr_text) > non_space_chars(&layer_text) => {
                ocr_pages.push(number);
                ocr_text
            }
            Some(_) if layer_text.is_empty() => {
                warnings.push(format!("page {number} has no text even after OCR"));
                layer_text
            }
            _ => layer_text,
        };
        pages.push(Page {
            number,
            text,
            headings: Vec::new(),
        });
    }
    if pages.iter().all(|p| p.text.is_empty()) {
        let detail = match needs_ocr.len() {
            0 => String::new(),
            1 => " even after OCR of 1 page".to_owned(),
            n => format!(" even after OCR of {n} pages"),
        };
        return Err(IngestError::NoText {
            kind: DocumentKind::Pdf,
            detail,
        });
    }
    Ok(ExtractedDocument {
        kind: DocumentKind::Pdf,
        title: info.title,
        pages,
        ocr_pages,
        virtual_pages: false,
        warnings,
        ocr: ocr_stats,
    })
}

/// Renders one page to a grayscale PNG and OCRs it.
fn ocr_page(
    input: &Path,
    dir: &Path,
    page: u32,
    dpi: u32,
    parallel: bool,
    options: &IngestOptions,
) -> Result<String, IngestError> {
    let prefix = dir.join(format!("page-{page}"));
    let (page_arg, dpi_arg) = (page.to_string(), dpi.to_string());
    let context = format!("while rendering page {page}");
    run_poppler(
        PDFTOPPM,
        vec![
            OsStr::new("-r"),
            OsStr::new(&dpi_arg),
            OsStr::new("-f"),
            OsStr::new(&page_arg),
            OsStr::new("-l"),
            OsStr::new(&page_arg),
            OsStr::new("-png"),
            OsStr::new("-gray"),
            OsStr::new("-singlefile"),
            input.as_os_str(),
            prefix.as_os_str(),
        ],
        options.page_timeout,
        1024 * 1024,
        None,
        &context,
    )?;
    let image = prefix.with_extension("png");
    let text = ocr::ocr_image(&OcrJob {
        image: &image,
        language: &options.ocr_language,
        dpi: Some(dpi),
        timeout: options.page_timeout,
        single_threaded: parallel,
        context: format!("while reading page {page}"),
    });
    let _ = std::fs::remove_file(&image);
    Ok(normalize_multiline(&text?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdfinfo_output_is_parsed() {
        let out = "Title:           Producing PDFs\nPages:           8\nEncrypted:       no\nPage    1 size: 612 x 792 pts (letter)\nPage   12 size: 595.276 x 841.89 pts (A4)\n";
        let info = parse_info(out).unwrap();
        assert_eq!(
            info,
            PdfInfo {
                pages: 8,
                title: Some("Producing PDFs".into()),
                encryption: None
            }
        );
        let sizes = parse_page_sizes(out);
        assert_eq!(sizes.get(&1), Some(&(612.0, 792.0)));
        assert_eq!(sizes.get(&12), Some(&(595.276, 841.89)));
        assert!(matches!(
            parse_info("Pages: 0\n"),
            Err(IngestError::CorruptPdf { .. })
        ));
    }

    #[test]
    fn huge_pages_are_rendered_at_a_lower_resolution() {
        assert_eq!(render_dpi(300, Some((612.0, 792.0)), 40_000_000), 300);
        let dpi = render_dpi(300, Some((14_400.0, 14_400.0)), 40_000_000);
        let pixels = (200.0 * f64::from(dpi)).ceil().powi(2);
        assert!(dpi < 300 && pixels <= 40_000_000.0, "{dpi}");
        assert_eq!(render_dpi(300, None, 1), 300);
    }
}
