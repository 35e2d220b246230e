//! Exit codes of every client subcommand (SPEC) and the one mapping from API errors to them.

use std::process::ExitCode;

use crate::api::{ApiError, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    Usage = 2,
    Unreachable = 3,
    LoginRequired = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A command's failure: one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

/// The only place an API error becomes an exit code.
pub fn exit_code(code: ErrorCode) -> Exit {
    match code {
        ErrorCode::LoginRequired | ErrorCode::LoginPending => Exit::LoginRequired,
        ErrorCode::ValidationError => Exit::Usage,
        _ => Exit::Error,
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::new(exit_code(e.code), e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_codes_map_to_exit_codes() {
        assert_eq!(exit_code(ErrorCode::LoginRequired), Exit::LoginRequired);
        assert_eq!(exit_code(ErrorCode::LoginPending), Exit::LoginRequired);
        assert_eq!(exit_code(ErrorCode::ValidationError), Exit::Usage);
        assert_eq!(exit_code(ErrorCode::UpstreamError), Exit::Error);
        assert_eq!(exit_code(ErrorCode::NotFound), Exit::Error);
        assert_eq!(Exit::Unreachable as u8, 3);
    }
}
