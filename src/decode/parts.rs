//! Pieces that SNS triggers and API output share, under different spellings.

use super::fields::Fields;
use super::DecodeError;
use crate::domain::{LifecycleEvent, Observation, Overview, TargetObservation};

/// Reads `deploymentOverview` (object or JSON string; counts as numbers or strings).
pub(super) fn overview(parent: &mut Fields) -> Result<Option<Overview>, DecodeError> {
    let Some(mut counts) = parent.object("deploymentOverview")? else {
        return Ok(None);
    };
    Ok(Some(Overview {
        pending: counts.count("Pending")?,
        in_progress: counts.count("InProgress")?,
        succeeded: counts.count("Succeeded")?,
        failed: counts.count("Failed")?,
        skipped: counts.count("Skipped")?,
        ready: counts.count("Ready")?,
    }))
}

/// Reads the code of `errorInformation`: `code` in the API, `ErrorCode` in SNS
/// triggers. An empty object (moto) means no error.
pub(super) fn error_code(parent: &mut Fields) -> Result<Option<String>, DecodeError> {
    match parent.object("errorInformation")? {
        Some(mut info) => info.string("code|ErrorCode"),
        None => Ok(None),
    }
}

/// Fills the rollback links from `key` (`rollbackInfo` in the API,
/// `rollbackInformation` in SNS triggers; the inner keys differ only in case).
pub(super) fn rollback(
    parent: &mut Fields,
    key: &str,
    observation: &mut Observation,
) -> Result<(), DecodeError> {
    if let Some(mut info) = parent.object(key)? {
        observation.rollback_of = info.optional_deployment_id("rollbackTriggeringDeploymentId")?;
        observation.rolled_back_by = info.optional_deployment_id("rollbackDeploymentId")?;
    }
    Ok(())
}

/// Reads one deployment target: an API `instanceTarget`/`lambdaTarget`/… (`targetId`,
/// `status`), a deprecated `instanceSummary` (`instanceId`, `status`), or an SNS instance
/// trigger (`instanceId`, `instanceStatus`).
pub(super) fn target(
    target: &mut Fields,
    id_key: &str,
    status_key: &str,
) -> Result<TargetObservation, DecodeError> {
    let target_id = target.target_id(id_key)?;
    let status = target.target_status(status_key)?;
    let lifecycle_events = target
        .objects("lifecycleEvents")?
        .unwrap_or_default()
        .into_iter()
        .map(lifecycle_event)
        .collect::<Result<_, _>>()?;
    Ok(TargetObservation {
        target_id,
        status,
        lifecycle_events,
    })
}

/// One lifecycle event: camelCase with `diagnostics` in the API, PascalCase without
/// diagnostics in SNS instance triggers. Skipped events may lack either time.
fn lifecycle_event(mut event: Fields) -> Result<LifecycleEvent, DecodeError> {
    let name = event.required_string("lifecycleEventName|LifecycleEvent")?;
    let status = event.target_status("status|LifecycleEventStatus")?;
    let start_time = event.time("startTime")?;
    let end_time = event.time("endTime")?;
    let error_code = match event.object("diagnostics")? {
        // `Success` is what a hook that did not fail reports; it is not an error.
        Some(mut diagnostics) => diagnostics
            .string("errorCode")?
            .filter(|code| !code.eq_ignore_ascii_case("Success")),
        None => None,
    };
    Ok(LifecycleEvent {
        name,
        status,
        start_time,
        end_time,
        error_code,
    })
}
