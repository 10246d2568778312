//! What a case can end with, and the error type cases use with `?`.

use std::fmt;

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The compositor did what the spec asks; the note says which of the allowed behaviours.
    Pass(Option<String>),
    /// It did not, and why.
    Fail(String),
    /// The case could not run here, and why.
    Skip(String),
}

impl Outcome {
    /// "pass", "fail" or "skip".
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        }
    }

    /// The reason or note, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Pass(note) => note.as_deref(),
            Outcome::Fail(why) | Outcome::Skip(why) => Some(why),
        }
    }
}

/// A case that did not pass: `?` turns any error into a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseError {
    /// The compositor misbehaved (or something broke).
    Fail(String),
    /// Something the case needs is missing.
    Skip(String),
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Fail(why) => write!(f, "fail: {why}"),
            CaseError::Skip(why) => write!(f, "skip: {why}"),
        }
    }
}

impl From<anyhow::Error> for CaseError {
    fn from(e: anyhow::Error) -> CaseError {
        CaseError::Fail(format!("{e:#}"))
    }
}

/// What a case returns: `Ok(note)` passes.
pub type CaseResult = Result<Option<String>, CaseError>;

impl From<CaseResult> for Outcome {
    fn from(result: CaseResult) -> Outcome {
        match result {
            Ok(note) => Outcome::Pass(note),
            Err(CaseError::Fail(why)) => Outcome::Fail(why),
            Err(CaseError::Skip(why)) => Outcome::Skip(why),
        }
    }
}

/// Fails the case with a formatted reason.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::outcome::CaseError::Fail(format!($($arg)*)))
    };
}
pub(crate) use fail;

/// Fails the case unless `cond` holds.
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::outcome::fail!($($arg)*);
        }
    };
}
pub(crate) use check;
