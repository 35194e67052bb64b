//! OCR with the `tesseract` program: availability checks, one image to text, and a small
//! thread pool that OCRs many pages at once.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::IngestError;
use crate::options::validate_language;
use crate::process::{Run, TESSERACT};

/// What `tesseract --version` and `--list-langs` reported.
#[derive(Debug, Clone)]
pub(crate) struct TesseractInfo {
    pub version: String,
    pub languages: Vec<String>,
    /// Whether tesseract's leptonica was built with libwebp.
    pub reads_webp: bool,
}

/// Probed once per process, on the first success (a failure is retried next time, so a tool
/// installed while the service runs is picked up).
static PROBE: OnceLock<TesseractInfo> = OnceLock::new();

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn tesseract_info() -> Result<&'static TesseractInfo, IngestError> {
    if let Some(info) = PROBE.get() {
        return Ok(info);
    }
    let run = |arg: &'static str| -> Result<String, IngestError> {
        let out = Run {
            tool: TESSERACT,
            args: vec![OsStr::new(arg)],
            env: Vec::new(),
            timeout: PROBE_TIMEOUT,
            max_stdout: 1024 * 1024,
            context: format!("while running `tesseract {arg}`"),
        }
        .output()?
        .map_err(|_| IngestError::ToolFailed {
            tool: TESSERACT.name.to_owned(),
            status: "too much output".to_owned(),
            context: format!("while running `tesseract {arg}`"),
            stderr: String::new(),
            killed_by_signal: false,
        })?
        .success(TESSERACT, &format!("while running `tesseract {arg}`"))?;
        // Old versions print to stderr, new ones to stdout.
        Ok(format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            out.stderr
        ))
    };
    let version_text = run("--version")?;
    let version = version_text
        .lines()
        .find_map(|line| line.trim().strip_prefix("tesseract "))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let reads_webp = version_text.contains("libwebp");
    let langs_text = run("--list-langs")?;
    let languages = langs_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("List of available languages") && !l.contains(' '))
        .map(str::to_owned)
        .collect();
    let info = TesseractInfo {
        version,
        languages,
        reads_webp,
    };
    tracing::debug!(version = %info.version, languages = ?info.languages, reads_webp, "tesseract found");
    Ok(PROBE.get_or_init(|| info))
}

/// Checks that tesseract is installed and has trained data for `language` (one name or several
/// joined by `+`), and returns its version (for example `"5.3.0"`).
///
/// Fails with [`IngestError::ToolMissing`] when tesseract is not installed,
/// [`IngestError::OcrLanguageMissing`] when a language is not, and
/// [`IngestError::InvalidOption`] for a malformed language string.
pub fn ocr_available(language: &str) -> Result<String, IngestError> {
    validate_language(language)?;
    let info = tesseract_info()?;
    if let Some(missing) = language
        .split('+')
        .find(|lang| !info.languages.iter().any(|l| l == lang))
    {
        return Err(IngestError::OcrLanguageMissing {
            language: missing.to_owned(),
            installed: info.languages.join(", "),
            hint: format!(
                "apt-get install tesseract-ocr-{}",
                missing.to_ascii_lowercase().replace('_', "-")
            ),
        });
    }
    Ok(info.version.clone())
}

/// One OCR run.
pub(crate) struct OcrJob<'a> {
    pub image: &'a Path,
    pub language: &'a str,
    /// The resolution the image was rendered at, when known.
    pub dpi: Option<u32>,
    pub timeout: Duration,
    /// Restrict tesseract to one thread (when several pages run at once).
    pub single_threaded: bool,
    pub context: String,
}

/// Runs tesseract on one image file and returns its raw text output (pages of a multi-page
/// TIFF are separated by form feeds).
pub(crate) fn ocr_image(job: &OcrJob<'_>) -> Result<String, IngestError> {
    let dpi = job.dpi.map(|d| d.to_string());
    let mut args: Vec<&OsStr> = vec![
        job.image.as_os_str(),
        OsStr::new("stdout"),
        OsStr::new("-l"),
        OsStr::new(job.language),
    ];
    if let Some(dpi) = &dpi {
        args.push(OsStr::new("--dpi"));
        args.push(OsStr::new(dpi));
    }
    let mut env = Vec::new();
    if job.single_threaded {
        env.push(("OMP_THREAD_LIMIT", "1".to_owned()));
    }
    let out = Run {
        tool: TESSERACT,
        args,
        env,
        timeout: job.timeout,
        max_stdout: 64 * 1024 * 1024,
        context: job.context.clone(),
    }
    .output()?
    .map_err(|overflow| IngestError::ToolFailed {
        tool: TESSERACT.name.to_owned(),
        status: format!("more than {} bytes of output", overflow.bytes_read),
        context: job.context.clone(),
        stderr: String::new(),
        killed_by_signal: false,
    })?
    .success(TESSERACT, &job.context)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Applies `work` to every item on up to `threads` threads, keeping the input order. Stops
/// handing out items after the first error, and returns the error of the earliest failed item.
/// The caller's tracing dispatcher and span are carried into the worker threads.
/// Also returns the most items that were being worked on at the same moment.
pub(crate) fn parallel_map<T, R, F>(
    items: &[T],
    threads: usize,
    work: F,
) -> Result<(Vec<R>, usize), IngestError>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> Result<R, IngestError> + Sync,
{
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        let out: Vec<R> = items.iter().map(&work).collect::<Result<_, _>>()?;
        return Ok((out, usize::from(!items.is_empty())));
    }
    let in_flight = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R, IngestError>>>> =
        Mutex::new(std::iter::repeat_with(|| None).take(items.len()).collect());
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _entered = span.enter();
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else { break };
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let result = work(item);
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if let Ok(mut slots) = results.lock() {
                            slots[index] = Some(result);
                        }
                    }
                });
            });
        }
    });
    let slots = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for slot in slots {
        match slot {
            Some(Ok(value)) => out.push(value),
            Some(Err(err)) => {
                first_error.get_or_insert(err);
            }
            None => {}
        }
    }
    match first_error {
        Some(err) => Err(err),
        None if out.len() == items.len() => Ok((out, peak.load(Ordering::SeqCst))),
        None => Err(IngestError::io(
            "collecting OCR results",
            std::io::Error::other("a worker thread stopped without a result"),
        )),
    }
}

/// Logs the start and end of one page's OCR (the parallelism test listens to these events).
pub(crate) fn timed_page<R>(page: u32, f: impl FnOnce() -> Result<R, IngestError>) -> Result<R, IngestError> {
    let started = Instant::now();
    tracing::debug!(page, "ocr page started");
    let result = f();
    tracing::debug!(
        page,
        elapsed_ms = started.elapsed().as_millis() as u64,
        ok = result.is_ok(),
        "ocr page finished"
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_order_and_reports_the_first_error() {
        let items: Vec<u32> = (0..20).collect();
        let (doubled, _) = parallel_map(&items, 3, |&x| Ok(x * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let err = parallel_map(&items, 3, |&x| {
            if x >= 5 {
                Err(IngestError::NoText {
                    kind: crate::DocumentKind::Pdf,
                    detail: format!(" item {x}"),
                })
            } else {
                Ok(x)
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("item 5"), "{err}");
    }
}
