//! Running the external programs (poppler-utils, tesseract) with a timeout, bounded output and
//! captured standard error.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::IngestError;

/// An external program and how to install it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tool {
    pub name: &'static str,
    pub hint: &'static str,
}

pub(crate) const TESSERACT: Tool = Tool {
    name: "tesseract",
    hint: "apt-get install tesseract-ocr",
};
pub(crate) const PDFINFO: Tool = Tool {
    name: "pdfinfo",
    hint: "apt-get install poppler-utils",
};
pub(crate) const PDFTOTEXT: Tool = Tool {
    name: "pdftotext",
    hint: "apt-get install poppler-utils",
};
pub(crate) const PDFTOPPM: Tool = Tool {
    name: "pdftoppm",
    hint: "apt-get install poppler-utils",
};

/// Most bytes of standard error kept.
const MAX_STDERR: usize = 64 * 1024;
/// Most characters of standard error quoted in an error message.
const QUOTED_STDERR_CHARS: usize = 1_000;

/// What a finished program left.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// Turns a non-zero exit into [`IngestError::ToolFailed`].
    pub(crate) fn success(self, tool: Tool, context: &str) -> Result<Output, IngestError> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(IngestError::ToolFailed {
                tool: tool.name.to_owned(),
                status: self.status.to_string(),
                context: context.to_owned(),
                stderr: quote_stderr(&self.stderr),
                killed_by_signal: self.status.code().is_none(),
            })
        }
    }
}

/// Trims and shortens standard error for an error message.
pub(crate) fn quote_stderr(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        return "(nothing on stderr)".to_owned();
    }
    let mut quoted: String = trimmed.chars().take(QUOTED_STDERR_CHARS).collect();
    if quoted.len() < trimmed.len() {
        quoted.push_str(" […]");
    }
    quoted
}

/// A run of one program.
pub(crate) struct Run<'a> {
    pub tool: Tool,
    pub args: Vec<&'a OsStr>,
    pub env: Vec<(&'static str, String)>,
    pub timeout: Duration,
    /// Most bytes of standard output accepted; past that the program is killed.
    pub max_stdout: usize,
    /// What the run is for, quoted in errors ("while rendering page 3").
    pub context: String,
}

/// Error when standard output went over [`Run::max_stdout`].
#[derive(Debug)]
pub(crate) struct StdoutOverflow {
    pub bytes_read: usize,
}

impl Run<'_> {
    /// Runs the program to completion or until the timeout, whatever its exit status.
    ///
    /// `Err(Ok(overflow))` means standard output exceeded `max_stdout`; `Err(Err(e))` is any
    /// other failure.
    pub(crate) fn output(&self) -> Result<Result<Output, StdoutOverflow>, IngestError> {
        let mut command = Command::new(self.tool.name);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => IngestError::ToolMissing {
                tool: self.tool.name.to_owned(),
                hint: self.tool.hint.to_owned(),
            },
            _ => IngestError::Spawn {
                tool: self.tool.name.to_owned(),
                source,
            },
        })?;
        let overflow = Arc::new(AtomicBool::new(false));
        let stdout_reader = child.stdout.take().map(|pipe| {
            let overflow = Arc::clone(&overflow);
            let max = self.max_stdout;
            PipeReader::spawn(pipe, max, Some(overflow))
        });
        let stderr_reader = child
            .stderr
            .take()
            .map(|pipe| PipeReader::spawn(pipe, MAX_STDERR, None));

        let mut poll = Duration::from_millis(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(source) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(IngestError::io(format!("waiting for {}", self.tool.name), source));
                }
            }
            if overflow.load(Ordering::Relaxed) || started.elapsed() >= self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(poll);
            poll = (poll * 2).min(Duration::from_millis(50));
        };
        // A grandchild that inherited the pipes may keep them open after the program ended:
        // wait for the readers only a little, then leave them to finish on their own.
        let grace_end = Instant::now() + PIPE_GRACE;
        let stdout = stdout_reader.map(|r| r.finish(grace_end)).unwrap_or_default();
        let stderr_bytes = stderr_reader.map(|r| r.finish(grace_end)).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr_bytes).into_owned();
        tracing::trace!(
            tool = self.tool.name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "program finished"
        );
        if overflow.load(Ordering::Relaxed) {
            return Ok(Err(StdoutOverflow {
                bytes_read: stdout.len(),
            }));
        }
        match status {
            Some(status) => Ok(Ok(Output {
                status,
                stdout,
                stderr,
            })),
            None => Err(IngestError::Timeout {
                tool: self.tool.name.to_owned(),
                timeout: self.timeout,
                context: self.context.clone(),
                stderr: quote_stderr(&stderr),
            }),
        }
    }
}

/// How long the pipes may stay open after the program has ended or been killed.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// A thread draining one pipe into a shared buffer, so that what was read can be taken even
/// if the pipe never closes.
struct PipeReader {
    buffer: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl PipeReader {
    /// Keeps at most `max` bytes. With `overflow`, going over `max` sets it and stops reading
    /// (the caller then kills the program); otherwise the excess is drained and dropped so the
    /// program never blocks on a full pipe.
    fn spawn(mut pipe: impl Read + Send + 'static, max: usize, overflow: Option<Arc<AtomicBool>>) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let shared = Arc::clone(&buffer);
        thread::spawn(move || {
            let mut chunk = [0u8; 64 * 1024];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let Ok(mut kept) = shared.lock() else { break };
                        let room = max.saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..n.min(room)]);
                        if n > room {
                            if let Some(flag) = &overflow {
                                flag.store(true, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        PipeReader { buffer, done }
    }

    /// Waits for the end of the pipe until `deadline`, then returns what was read.
    fn finish(self, deadline: Instant) -> Vec<u8> {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let mut guard = self
            .buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tool: Tool, args: &[&str], timeout_ms: u64, max_stdout: usize) -> Run<'static> {
        let args: Vec<&'static OsStr> = args
            .iter()
            .map(|a| OsStr::new(Box::leak(a.to_string().into_boxed_str())))
            .collect();
        Run {
            tool,
            args,
            env: Vec::new(),
            timeout: Duration::from_millis(timeout_ms),
            max_stdout,
            context: "in a unit test".into(),
        }
    }

    const SH: Tool = Tool {
        name: "sh",
        hint: "apt-get install dash",
    };

    #[test]
    fn captures_stdout_stderr_and_status() {
        let out = run(SH, &["-c", "echo out; echo err >&2; exit 3"], 10_000, 1024)
            .output()
            .unwrap()
            .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, "err\n");
        let err = out.success(SH, "while testing").unwrap_err();
        assert!(
            err.to_string().contains("err") && err.to_string().contains('3'),
            "{err}"
        );
        assert!(err.is_permanent());
    }

    #[test]
    fn kills_programs_that_run_too_long() {
        let started = Instant::now();
        let err = run(SH, &["-c", "echo before >&2; sleep 5"], 200, 1024)
            .output()
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(&err, IngestError::Timeout { stderr, .. } if stderr.contains("before")),
            "{err}"
        );
        assert!(!err.is_permanent());
    }

    #[test]
    fn stops_runaway_output_and_reports_missing_programs() {
        let overflow = run(SH, &["-c", "yes"], 10_000, 100_000)
            .output()
            .unwrap()
            .unwrap_err();
        assert!(overflow.bytes_read >= 100_000);
        let missing = Tool {
            name: "learnflow-no-such-program",
            hint: "apt-get install nothing",
        };
        let err = run(missing, &[], 1_000, 10).output().unwrap_err();
        assert!(matches!(err, IngestError::ToolMissing { .. }), "{err}");
    }
}
