//! Configuration errors with their place in the file, rendered by miette
//! with the source line and a caret.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, SourceSpan};

/// One configuration error.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file, as given on the command line.
    pub file: Arc<str>,
    /// Its text.
    pub source_text: Arc<String>,
    /// Where: a byte range in the file.
    pub span: std::ops::Range<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when known.
    pub help: Option<String>,
}

impl ConfigError {
    /// 1-based line and column of the error.
    pub fn line_col(&self) -> (usize, usize) {
        rules::line_col(&self.source_text, self.span.start)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.line_col();
        write!(f, "{}:{line}:{col}: {}", self.file, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("mvsync::config"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source_text.as_ref() as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let len = self.span.len().max(1).min(
            self.source_text
                .len()
                .saturating_sub(self.span.start)
                .max(1),
        );
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(
                Some("here".into()),
                SourceSpan::new(self.span.start.into(), len),
            ),
        )))
    }
}

/// Every error of a configuration, reported together so an operator fixes
/// them in one go.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The errors, in file order.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps a list of errors (sorted by position).
    pub fn new(mut errors: Vec<ConfigError>) -> ConfigErrors {
        errors.sort_by_key(|e| (e.file.clone(), e.span.start));
        mask_literal_secrets(&mut errors);
        ConfigErrors { errors }
    }
}

/// A secret written into the file itself is an error, and its snippet must
/// not print it: the value's bytes are masked in the source every error of
/// that file shows (a neighbouring error's context lines included).
pub(crate) fn mask_literal_secrets(errors: &mut [ConfigError]) {
    let spans: Vec<(Arc<str>, std::ops::Range<usize>)> = errors
        .iter()
        .filter(|e| {
            e.message
                .contains(connectors::common::secret::LITERAL_SECRET)
        })
        .map(|e| (e.file.clone(), e.span.clone()))
        .collect();
    for (file, span) in spans {
        let Some(first) = errors.iter().find(|e| e.file == file) else {
            continue;
        };
        let mut text = first.source_text.as_str().to_owned();
        if let Some(value) = text.get(span.clone()) {
            let masked: String = value
                .chars()
                .map(|c| {
                    if matches!(c, '"' | '\'' | '\n' | '\r') {
                        c
                    } else {
                        '*'
                    }
                })
                .collect();
            text.replace_range(span, &masked);
        }
        let masked = Arc::new(text);
        for e in errors.iter_mut().filter(|e| e.file == file) {
            e.source_text = masked.clone();
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                writeln!(f, "{} configuration errors:", many.len())?;
                for e in many {
                    writeln!(f, "  {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

impl Diagnostic for ConfigErrors {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.errors.len() > 1 {
            Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
        } else {
            None
        }
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        match self.errors.as_slice() {
            [one] => one.source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        match self.errors.as_slice() {
            [one] => one.labels(),
            _ => None,
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.errors.as_slice() {
            [one] => one.help(),
            _ => None,
        }
    }
}
