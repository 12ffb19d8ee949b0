//! A map of a few entries, kept as a sorted vector: a deployment's targets and a
//! target's hooks.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map kept as a vector sorted by key. A deployment has a handful of targets and
/// a target a handful of hooks, and a `BTreeMap` allocates room for eleven entries
/// per node: in a ledger holding every deployment of a month (what `replay`
/// builds), those half-empty nodes were most of its memory. Serialized as a map
/// in key order, exactly as a `BTreeMap`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    fn position<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value at `key`, inserted as `V::default()` when absent: the owned key
    /// is built only for a new entry.
    pub fn get_or_default<Q: Ord + ?Sized>(&mut self, key: &Q) -> &mut V
    where
        K: Borrow<Q> + for<'q> From<&'q Q>,
        V: Default,
    {
        let at = match self.position(key) {
            Ok(at) => at,
            Err(at) => {
                self.0.insert(at, (K::from(key), V::default()));
                at
            }
        };
        &mut self.0[at].1
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<'m, K: Ord, V> IntoIterator for &'m SmallMap<K, V> {
    type Item = (&'m K, &'m V);
    type IntoIter = std::iter::Map<std::slice::Iter<'m, (K, V)>, fn(&'m (K, V)) -> (&'m K, &'m V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SmallMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, v))).finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for SmallMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<K, V>::deserialize(deserializer).map(|map| SmallMap(map.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_its_entries_sorted_and_finds_them() {
        let mut map: SmallMap<String, u32> = SmallMap::default();
        for key in ["c", "a", "b", "a"] {
            *map.get_or_default(key) += 1;
        }
        let entries: Vec<(&str, u32)> = (&map).into_iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(entries, [("a", 2), ("b", 1), ("c", 1)]);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), [2, 1, 1]);
    }

    #[test]
    fn is_stored_exactly_as_the_btree_map_it_replaces() {
        let pairs = [("i-2", 7u64), ("i-1", 3), ("i-3", 0)];
        let mut small: SmallMap<String, u64> = SmallMap::default();
        for (key, value) in pairs {
            *small.get_or_default(key) = value;
        }
        let btree: BTreeMap<String, u64> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let bytes = postcard::to_stdvec(&small).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&btree).unwrap());
        assert_eq!(postcard::from_bytes::<SmallMap<String, u64>>(&bytes).unwrap(), small);
        assert_eq!(serde_json::to_string(&small).unwrap(), serde_json::to_string(&btree).unwrap());
    }
}
