//! Pieces that SNS triggers and API output share, under different spellings.

use compact_str::CompactString;
use super::json::{json_object, Leaf, List, Obj, Path, Slot};
use super::{DecodeError, Message};
use crate::domain::{LifecycleEvent as Hook, Observation, Overview as Counts, TargetObservation, ALARM_ACTIVE};

json_object! {
    /// `deploymentOverview`: counts as numbers or strings.
    struct Overview {
        pending: Leaf<'a> = b"pending",
        in_progress: Leaf<'a> = b"inprogress",
        succeeded: Leaf<'a> = b"succeeded",
        failed: Leaf<'a> = b"failed",
        skipped: Leaf<'a> = b"skipped",
        ready: Leaf<'a> = b"ready",
    }
}

json_object! {
    /// `errorInformation`: `code` and `message` in the API, `ErrorCode` and
    /// `ErrorMessage` in SNS triggers.
    struct ErrorInformation {
        code: Leaf<'a> = b"code" | b"errorcode",
        message: Leaf<'a> = b"message" | b"errormessage",
    }
}

json_object! {
    /// `rollbackInfo` in the API, `rollbackInformation` in SNS triggers (the inner
    /// keys differ only in case).
    struct Rollback {
        rollback_triggering_deployment_id: Leaf<'a> = b"rollbacktriggeringdeploymentid",
        rollback_deployment_id: Leaf<'a> = b"rollbackdeploymentid",
    }
}

json_object! {
    /// One lifecycle event: camelCase with `diagnostics` in the API, PascalCase
    /// without diagnostics in SNS instance triggers.
    struct LifecycleEvent {
        name: Leaf<'a> = b"lifecycleeventname" | b"lifecycleevent",
        status: Leaf<'a> = b"status" | b"lifecycleeventstatus",
        start_time: Leaf<'a> = b"starttime",
        end_time: Leaf<'a> = b"endtime",
        diagnostics: Obj<'a, Diagnostics<'a>> = b"diagnostics",
    }
}

json_object! {
    struct Diagnostics {
        error_code: Leaf<'a> = b"errorcode",
    }
}

json_object! {
    /// An API `instanceTarget`/`lambdaTarget`/… (`targetId`, `status`), or a
    /// deprecated `instanceSummary` (`instanceId`, `status`).
    struct Target {
        deployment_id: Leaf<'a> = b"deploymentid",
        target_id: Leaf<'a> = b"targetid",
        instance_id: Leaf<'a> = b"instanceid",
        status: Leaf<'a> = b"status",
        lifecycle_events: List<'a, Obj<'a, LifecycleEvent<'a>>> = b"lifecycleevents",
    }
}

/// Reads `deploymentOverview` (object or JSON string; counts as numbers or strings).
pub(super) fn overview(slot: &Slot<'_, Obj<'_, Overview<'_>>>, at: &Path) -> Result<Option<Counts>, DecodeError> {
    let names = ["deploymentOverview"];
    let Some(counts) = slot.object(at, &names)? else {
        return Ok(None);
    };
    let at = at.key(names[0]);
    Ok(Some(Counts {
        pending: counts.pending.count(&at, &["Pending"])?,
        in_progress: counts.in_progress.count(&at, &["InProgress"])?,
        succeeded: counts.succeeded.count(&at, &["Succeeded"])?,
        failed: counts.failed.count(&at, &["Failed"])?,
        skipped: counts.skipped.count(&at, &["Skipped"])?,
        ready: counts.ready.count(&at, &["Ready"])?,
    }))
}

/// Reads `errorInformation` into the observation: its code, and for an
/// `ALARM_ACTIVE` stop the alarms its message names. An empty object (moto)
/// means no error. The message only adds alarm names: one that cannot be read
/// loses them, never the deployment.
pub(super) fn error(
    slot: &Slot<'_, Obj<'_, ErrorInformation<'_>>>,
    at: &Path,
    observation: &mut Observation,
) -> Result<(), DecodeError> {
    let names = ["errorInformation"];
    let Some(info) = slot.object(at, &names)? else { return Ok(()) };
    let at = at.key(names[0]);
    observation.error_code = info.code.string(&at, &["code", "ErrorCode"])?.map(CompactString::from);
    if observation.error_code.as_deref() == Some(ALARM_ACTIVE) {
        let message = info.message.string(&at, &["message", "ErrorMessage"]).ok().flatten();
        observation.activated_alarms = message.map(activated_alarms).unwrap_or_default();
    }
    Ok(())
}

/// The alarms an `ALARM_ACTIVE` message names: `… Activated alarms: <a> <b>`,
/// each name in angle brackets, separated by spaces (a name may itself hold
/// spaces). Sorted, each once; none when the message has no such list.
fn activated_alarms(message: &str) -> Vec<CompactString> {
    const MARKER: &str = "activated alarms:";
    let Some(start) = message.to_ascii_lowercase().find(MARKER) else { return Vec::new() };
    let list = message[start + MARKER.len()..].trim().trim_end_matches('.');
    let Some(inner) = list.strip_prefix('<').and_then(|l| l.strip_suffix('>')) else { return Vec::new() };
    let mut alarms: Vec<CompactString> =
        inner.split("> <").map(str::trim).filter(|name| !name.is_empty()).map(CompactString::from).collect();
    alarms.sort();
    alarms.dedup();
    alarms
}

/// Fills the rollback links from `name` (`rollbackInfo` or `rollbackInformation`).
pub(super) fn rollback(
    slot: &Slot<'_, Obj<'_, Rollback<'_>>>,
    at: &Path,
    name: &'static str,
    observation: &mut Observation,
) -> Result<(), DecodeError> {
    if let Some(info) = slot.object(at, &[name])? {
        let at = at.key(name);
        observation.rollback_of = info
            .rollback_triggering_deployment_id
            .optional_deployment_id(&at, &["rollbackTriggeringDeploymentId"])?
            .map(CompactString::from);
        observation.rolled_back_by =
            info.rollback_deployment_id.optional_deployment_id(&at, &["rollbackDeploymentId"])?.map(CompactString::from);
    }
    Ok(())
}

/// Parses what a trigger encodes as JSON strings, as reading it would (for the parse-only baseline).
pub(super) fn parse_embedded(message: &Message) {
    let root = Path::Root;
    if let Ok(Some(counts)) = message.deployment_overview.object(&root, &["deploymentOverview"]) {
        std::hint::black_box(&*counts);
    }
    if let Ok(Some(info)) = message.error_information.object(&root, &["errorInformation"]) {
        std::hint::black_box(&*info);
    }
    if let Ok(Some(info)) = message.rollback_information.object(&root, &["rollbackInformation"]) {
        std::hint::black_box(&*info);
    }
}

/// Where one target's fields are: in a [`Target`], or at the top of an SNS instance trigger
/// (`instanceId`, `instanceStatus`).
pub(super) struct TargetFields<'s, 'a> {
    pub(super) id: (&'s Slot<'a, Leaf<'a>>, &'static str),
    pub(super) status: (&'s Slot<'a, Leaf<'a>>, &'static str),
    pub(super) lifecycle_events: &'s Slot<'a, List<'a, Obj<'a, LifecycleEvent<'a>>>>,
}

/// Reads one deployment target.
pub(super) fn target(fields: TargetFields, at: &Path) -> Result<TargetObservation, DecodeError> {
    let target_id = fields.id.0.target_id(at, &[fields.id.1])?;
    let status = fields.status.0.target_status(at, &[fields.status.1])?;
    let names = ["lifecycleEvents"];
    let lifecycle_events = match fields.lifecycle_events.objects(at, &names)? {
        Some(events) => {
            let events_at = at.key(names[0]);
            events.read_each(|i, event| lifecycle_event(event, &events_at.index(i)))?
        }
        None => Vec::new(),
    };
    Ok(TargetObservation { target_id: target_id.into(), status, lifecycle_events })
}

/// One lifecycle event. Skipped events may lack either time.
fn lifecycle_event(event: &LifecycleEvent, at: &Path) -> Result<Hook, DecodeError> {
    let name = event.name.required_string(at, &["lifecycleEventName", "LifecycleEvent"])?;
    let status = event.status.target_status(at, &["status", "LifecycleEventStatus"])?;
    let start_time = event.start_time.time(at, &["startTime"])?;
    let end_time = event.end_time.time(at, &["endTime"])?;
    let names = ["diagnostics"];
    let error_code = match event.diagnostics.object(at, &names)? {
        // `Success` is what a hook that did not fail reports; it is not an error.
        Some(diagnostics) => diagnostics
            .error_code
            .string(&at.key(names[0]), &["errorCode"])?
            .filter(|code| !code.eq_ignore_ascii_case("Success"))
            .map(CompactString::from),
        None => None,
    };
    Ok(Hook { name: name.into(), status, start_time, end_time, error_code })
}

#[cfg(test)]
mod tests {
    use super::activated_alarms;

    #[test]
    fn alarm_names_are_read_from_the_angle_brackets_after_the_marker() {
        let prefix = "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, \
                      and the affected deployments have been stopped. Activated alarms: ";
        let names = |list: &str| activated_alarms(&format!("{prefix}{list}"));
        assert_eq!(names("<name-a> <name-b>"), ["name-a", "name-b"]);
        assert_eq!(names("<zeta> <alpha> <zeta>"), ["alpha", "zeta"], "sorted, each once");
        assert_eq!(names("<p99 latency (ms)> <5xx>."), ["5xx", "p99 latency (ms)"], "spaces inside a name; a final full stop");
        assert_eq!(names("<a>"), ["a"]);
        assert!(names("").is_empty() && names("<>").is_empty() && names("latency").is_empty());
        assert_eq!(activated_alarms("activated ALARMS: <x>"), ["x"], "the marker in any case");
        assert!(activated_alarms("Deployment stopped by a user").is_empty());
    }
}
