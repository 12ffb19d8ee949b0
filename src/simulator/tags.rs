//! The simulated fleet's tags, as GetDeploymentGroup and ListTagsForResource
//! would give them: each group's `Environment` (its name's `prod` or
//! `staging`), each application's `Team`.

use std::collections::BTreeSet;

use compact_str::CompactString;

use super::{Fleet, FLEET};
use crate::domain::Millis;
use crate::group_info::GroupInfo;
use crate::ledger::GroupKey;

/// Who owns each application.
const TEAMS: [(&str, &str); 6] = [
    ("web-frontend", "web"),
    ("batch-worker", "data"),
    ("search-indexer", "data"),
    ("payments-api", "payments"),
    ("notification-sender", "payments"),
    ("checkout-service", "commerce"),
];

impl Fleet {
    /// Every group of the fleet as AWS would describe it at `now`, with the
    /// values of the `asked` tag keys.
    pub fn group_info(asked: &BTreeSet<CompactString>, now: Millis) -> Vec<(GroupKey, GroupInfo)> {
        FLEET
            .iter()
            .map(|spec| {
                let key = GroupKey {
                    account_id: spec.account.into(),
                    region: spec.region.into(),
                    application: spec.application.into(),
                    deployment_group: spec.group.into(),
                };
                let environment = if spec.group.starts_with("prod") { "prod" } else { spec.group };
                let group_tags = [("Environment".to_owned(), environment.to_owned())];
                let team = TEAMS.iter().find(|(application, _)| *application == spec.application).map(|(_, team)| *team);
                let application_tags: Vec<(String, String)> = team.map(|t| ("Team".to_owned(), t.to_owned())).into_iter().collect();
                let info =
                    GroupInfo::new(Some(spec.platform.api_name()), Some(spec.config), asked, &group_tags, &application_tags, now);
                (key, info)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_has_an_environment_and_a_team_and_some_are_not_production() {
        let asked: BTreeSet<CompactString> = ["Environment".into(), "Team".into()].into();
        let groups = Fleet::group_info(&asked, 0);
        assert_eq!(groups.len(), FLEET.len());
        assert!(groups.iter().all(|(_, info)| info.tags.len() == 2), "{groups:?}");
        let environments: BTreeSet<&str> = groups.iter().map(|(_, info)| info.tags["Environment"].as_str()).collect();
        assert_eq!(environments, ["prod", "staging"].into());
        let teams: BTreeSet<&str> = groups.iter().map(|(_, info)| info.tags["Team"].as_str()).collect();
        assert_eq!(teams.len(), 4);
    }
}
