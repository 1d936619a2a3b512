//! Server-side validation of the first frame of a connection.

use crate::frame::{ErrorCode, SetupFrame};

/// Why a server refuses a SETUP before the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRejection {
    /// INVALID_SETUP or UNSUPPORTED_SETUP.
    pub code: ErrorCode,
    /// Text for the ERROR frame.
    pub message: String,
}

/// Checks a SETUP against what this engine supports: RSocket 1.x, no leases, and resumption
/// only when the server enables it.
pub fn check_setup(setup: &SetupFrame, resume_supported: bool) -> Result<(), SetupRejection> {
    let unsupported = |message: String| SetupRejection {
        code: ErrorCode::UnsupportedSetup,
        message,
    };
    if setup.major_version != 1 {
        return Err(unsupported(format!(
            "unsupported protocol version {}.{}",
            setup.major_version, setup.minor_version
        )));
    }
    if setup.lease {
        return Err(unsupported("leases are not supported".into()));
    }
    if setup.resume_token.is_some() && !resume_supported {
        return Err(unsupported(
            "resumption is not enabled on this server".into(),
        ));
    }
    if setup.resume_token.as_ref().is_some_and(|t| t.is_empty()) {
        return Err(SetupRejection {
            code: ErrorCode::InvalidSetup,
            message: "empty resume token".into(),
        });
    }
    Ok(())
}
