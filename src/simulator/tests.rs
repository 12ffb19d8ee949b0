use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::*;
use crate::decode::{decode, Decoded};
use crate::domain::{Observation, Status};

/// 2024-03-01T12:00:00Z.
const NOW: Millis = 1_709_294_400_000;

fn observations(message: &str) -> Vec<Observation> {
    match decode(message.as_bytes()) {
        Ok(Decoded::Observations(found)) => found,
        other => panic!("{other:?} for {message}"),
    }
}

/// 60 seconds of live mode in 250 ms steps, after a week of history.
fn live_minute(seed: u64) -> Vec<String> {
    let mut fleet = Fleet::new(seed);
    fleet.history(NOW, 7);
    (1..=240)
        .flat_map(|step| fleet.advance(NOW + step * 250))
        .collect()
}

#[test]
fn same_seed_same_messages() {
    let run = |seed| {
        let mut fleet = Fleet::new(seed);
        let mut messages = fleet.history(NOW, 3);
        messages.extend((1..=120).flat_map(|step| fleet.advance(NOW + step * 250)));
        messages
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn live_batching_does_not_change_the_stream() {
    let mut coarse = Fleet::new(3);
    let mut fine = Fleet::new(3);
    coarse.advance(NOW);
    fine.advance(NOW);
    let a: Vec<String> = (1..=12)
        .flat_map(|step| coarse.advance(NOW + step * 5_000))
        .collect();
    let b: Vec<String> = (1..=240)
        .flat_map(|step| fine.advance(NOW + step * 250))
        .collect();
    assert_eq!(a, b);
}

#[test]
fn history_decodes_and_shows_every_kind_of_event() {
    let mut fleet = Fleet::new(42);
    let messages = fleet.history(NOW, 30);
    let all: Vec<Observation> = messages.iter().flat_map(|m| observations(m)).collect();

    let platforms: BTreeSet<&str> = all
        .iter()
        .filter_map(|o| o.compute_platform.as_deref())
        .collect();
    assert_eq!(platforms, BTreeSet::from(["ECS", "Lambda", "Server"]));
    let statuses: HashSet<Status> = all.iter().filter_map(|o| o.status).collect();
    assert!(statuses.contains(&Status::Failed) && statuses.contains(&Status::Stopped));
    let creators: BTreeSet<&str> = all.iter().filter_map(|o| o.creator.as_deref()).collect();
    for creator in [
        "user",
        "CloudFormation",
        "CodeDeploy",
        "autoscaling",
        "codeDeployRollback",
    ] {
        assert!(creators.contains(creator), "no {creator} in {creators:?}");
    }
    assert!(all
        .iter()
        .any(|o| o.creator.as_deref() == Some("codeDeployRollback") && o.rollback_of.is_some()));
    assert!(all.iter().any(|o| o.rolled_back_by.is_some()));
    let hook_errors: BTreeSet<&str> = all
        .iter()
        .flat_map(|o| &o.targets)
        .flat_map(|t| &t.lifecycle_events)
        .filter_map(|e| e.error_code.as_deref())
        .collect();
    for code in ["ScriptFailed", "ScriptTimedOut", "UnknownError"] {
        assert!(hook_errors.contains(code), "no {code} in {hook_errors:?}");
    }
    let error_codes: BTreeSet<&str> = all.iter().filter_map(|o| o.error_code.as_deref()).collect();
    for code in [
        "HEALTH_CONSTRAINTS",
        "HOOK_EXECUTION_FAILURE",
        "ECS_UPDATE_ERROR",
        "ALARM_ACTIVE",
        "MANUAL_STOP",
    ] {
        assert!(error_codes.contains(code), "no {code} in {error_codes:?}");
    }
}

#[test]
fn history_is_in_time_order_and_finished_before_now() {
    let mut fleet = Fleet::new(1);
    let times: Vec<Millis> = fleet
        .history(NOW, 30)
        .iter()
        .flat_map(|m| observations(m))
        .filter_map(|o| o.event_time)
        .collect();
    assert!(!times.is_empty());
    assert!(times.iter().all(|t| *t >= NOW - 30 * DAY && *t < NOW));
    // EventBridge times are whole seconds, so neighbours may look a second apart in either order.
    assert!(times.windows(2).all(|w| w[0] <= w[1] + SECOND));
}

#[test]
fn deployment_ids_are_unique_and_look_real() {
    let mut fleet = Fleet::new(5);
    let mut ids = HashSet::new();
    for message in fleet.history(NOW, 30) {
        let value: Value = serde_json::from_str(&message).unwrap();
        if let Some(id) = value["deploymentInfo"]["deploymentId"].as_str() {
            let info = &value["deploymentInfo"];
            if info["status"] != "InProgress" {
                assert!(ids.insert(id.to_string()), "{id} finished twice");
            }
            assert!(id.len() == 11 && id.starts_with("d-"), "{id}");
            assert!(
                id[2..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
                "{id}"
            );
        }
    }
    assert!(ids.len() > 500, "only {} deployments", ids.len());
}

#[test]
fn api_times_are_consistent() {
    let mut fleet = Fleet::new(9);
    for message in fleet.history(NOW, 7) {
        for o in observations(&message) {
            let (Some(create), Some(start)) = (o.create_time, o.start_time) else {
                continue;
            };
            assert!(create <= start);
            if let Some(complete) = o.complete_time {
                assert!(start <= complete);
                for event in o.targets.iter().flat_map(|t| &t.lifecycle_events) {
                    if let (Some(s), Some(e)) = (event.start_time, event.end_time) {
                        assert!(start <= s && s <= e && e <= complete, "{message}");
                    }
                }
            }
        }
    }
}

#[test]
fn rollbacks_point_both_ways() {
    let mut fleet = Fleet::new(42);
    let mut rolled_back = HashSet::new();
    let mut rollbacks = Vec::new();
    for message in fleet.history(NOW, 30) {
        for o in observations(&message) {
            if let Some(by) = o.rolled_back_by {
                rolled_back.insert((o.deployment.deployment_id.clone(), by));
            }
            if o.creator.as_deref() == Some("codeDeployRollback") && o.complete_time.is_some() {
                rollbacks.push((
                    o.rollback_of.expect("rollback_of"),
                    o.deployment.deployment_id,
                ));
            }
        }
    }
    assert!(!rollbacks.is_empty());
    for pair in &rollbacks {
        assert!(rolled_back.contains(pair), "{pair:?}");
    }
}

#[test]
fn a_live_minute_shows_starts_progress_and_outcomes() {
    let messages = live_minute(42);
    let all: Vec<Observation> = messages.iter().flat_map(|m| observations(m)).collect();
    let event_states: BTreeSet<Status> = all
        .iter()
        .filter(|o| o.is_state_change)
        .filter_map(|o| o.status)
        .collect();
    assert!(
        event_states.contains(&Status::InProgress),
        "{event_states:?}"
    );
    assert!(
        event_states.iter().any(|s| s.is_terminal()),
        "{event_states:?}"
    );
    assert!(all.iter().any(|o| o.status == Some(Status::InProgress)
        && o.overview
            .is_some_and(|v| v.total() > 0 && v.in_progress + v.pending > 0)));

    // The deck makes sure a minute shows what can go wrong.
    let statuses: HashSet<Status> = all.iter().filter_map(|o| o.status).collect();
    for status in [Status::Succeeded, Status::Failed, Status::Stopped] {
        assert!(statuses.contains(&status), "no {status:?}");
    }
    assert!(all.iter().any(|o| o.rollback_of.is_some()));
    assert!(all
        .iter()
        .flat_map(|o| &o.targets)
        .flat_map(|t| &t.lifecycle_events)
        .any(|e| e.error_code.is_some()));
}

#[test]
fn live_deployments_take_seconds() {
    for message in live_minute(11) {
        let value: Value = serde_json::from_str(&message).unwrap();
        let info = &value["deploymentInfo"];
        if let (Some(create), Some(complete)) =
            (info["createTime"].as_f64(), info["completeTime"].as_f64())
        {
            let seconds = complete - create;
            assert!((1.0..=41.0).contains(&seconds), "{seconds} s: {message}");
        }
    }
}

#[test]
fn wire_formats_match_the_real_ones() {
    let mut fleet = Fleet::new(4);
    let messages = fleet.history(NOW, 2);
    let sns = messages
        .iter()
        .find(|m| m.contains("\"Type\":\"Notification\""))
        .expect("an SNS message");
    let envelope: Value = serde_json::from_str(sns).unwrap();
    let trigger: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(trigger["status"], "CREATED");
    assert!(trigger["completeTime"].is_null());
    let created = trigger["createTime"].as_str().unwrap();
    assert!(
        created.ends_with(" UTC 2024") || created.ends_with(" UTC 2023"),
        "{created}"
    );
    assert!(envelope["Subject"]
        .as_str()
        .unwrap()
        .starts_with("CREATED: AWS CodeDeploy d-"));

    let finished = messages
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter_map(|v| {
            v["Message"]
                .as_str()
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
        })
        .find(|t| t["status"] == "SUCCEEDED")
        .expect("a finished trigger");
    assert!(finished["deploymentOverview"].is_string());

    let event: Value = messages
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .find(|v| v["detail-type"] == "CodeDeploy Deployment State-change Notification")
        .expect("an EventBridge event");
    let time = event["time"].as_str().unwrap();
    assert_eq!(time.len(), "2024-03-01T12:00:00Z".len(), "{time}");
    assert_eq!(event["resources"].as_array().unwrap().len(), 2);
}

/// What the history teaches the ledger: several configurations per platform, alarm stops
/// naming their alarms, and a rollback after each way a deployment ends badly.
#[test]
fn history_shows_configs_alarm_stops_and_every_rollback_cause() {
    use crate::domain::RollbackCause;
    use crate::ledger::Ledger;

    let mut fleet = Fleet::new(42);
    let mut ledger = Ledger::untracked(MINUTE);
    for message in fleet.history(NOW, 30) {
        for o in observations(&message) {
            ledger.apply(&o, NOW);
        }
    }
    ledger.settle(NOW, true);
    let snapshot = ledger.snapshot(NOW);
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut causes: BTreeSet<RollbackCause> = BTreeSet::new();
    let mut alarms: BTreeSet<String> = BTreeSet::new();
    for group in &snapshot.groups {
        for ((kind, _), _) in group.stats.deployments.iter().filter(|(_, n)| **n > 0) {
            seen.insert((kind.compute_platform.to_string(), kind.deployment_config.to_string()));
        }
        causes.extend(group.stats.rollbacks.iter().filter(|(_, n)| **n > 0).map(|((_, cause), _)| *cause));
        alarms.extend(group.stats.alarm_stops.keys().map(|a| a.to_string()));
    }
    for platform in [Platform::Server, Platform::Lambda, Platform::Ecs] {
        for config in configs(platform) {
            assert!(seen.contains(&(platform.api_name().to_owned(), config.to_string())), "no {config}: {seen:?}");
        }
    }
    for cause in [RollbackCause::Failure, RollbackCause::Alarm, RollbackCause::Manual] {
        assert!(causes.contains(&cause), "no rollback after a {cause:?}: {causes:?}");
    }
    assert!(alarms.contains("web-frontend-prod-p99-latency"), "{alarms:?}");
    assert!(!alarms.contains("unknown"), "every alarm stop names its alarms: {alarms:?}");
    assert!(snapshot.limited.values().all(|n| *n == 0), "{:?}", snapshot.limited);
}
