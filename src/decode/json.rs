//! Typed, borrowed JSON: the building blocks every format's structs are made of,
//! and the rules all formats share.
//!
//! Messages are deserialized straight from their bytes into the structs declared
//! with [`json_object!`], whose strings borrow from the input where JSON escapes
//! allow. The rules that used to live in a walk over a `serde_json::Value` hold
//! here, so that every input decodes exactly as before:
//! - a field accepts a value of any JSON type; the type is checked when the field
//!   is read, so that the error names the field (`expected a string, found a
//!   number`) instead of failing the parse;
//! - `null` and `""` mean "absent" (moto and SNS send both for missing data);
//! - keys match case-insensitively when the exact spelling is missing (AWS spells
//!   `ErrorCode`/`errorCode` and `SigningCertURL`/`SigningCertUrl` both ways), a
//!   repeated key keeps its last value, and of several keys differing only in case
//!   the smallest wins, as a lookup in a sorted map of the object would find it;
//! - a nested object may arrive double-encoded as a JSON string (real SNS triggers
//!   do that); it is parsed from the unescaped string when it is read;
//! - unknown fields are skipped, but parsed as strictly as a `serde_json::Value`
//!   would parse them (numbers in range, valid escapes), so that what is invalid
//!   JSON stays invalid JSON.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{excerpt, time, DecodeError};
use crate::domain::{Millis, Status, TargetStatus};

/// Deployment ids are `d-` plus nine characters in AWS and UUIDs in moto; anything
/// much longer is not an id and would only bloat the ledger.
const MAX_DEPLOYMENT_ID_LEN: usize = 128;

/// Target ids include ECS `cluster:service` pairs and Lambda function names.
const MAX_TARGET_ID_LEN: usize = 512;

/// Most targets one deployment can count in a status. CodeDeploy deploys to at most
/// a few thousand instances at once; a larger count is garbage, and summing counts
/// near `u64::MAX` (overviews, per-group target counters) would overflow.
const MAX_COUNT: u64 = 1_000_000;

/// Longer than any key a struct declares: longer keys are skipped unread.
pub(crate) const LONGEST_KEY: usize = 32;

/// The JSON type of a value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        })
    }
}

/// A JSON number as serde_json reads it (what a `serde_json::Number` holds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    PosInt(u64),
    NegInt(i64),
    Float(f64),
}

impl Number {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::PosInt(n) => n as f64,
            Number::NegInt(n) => n as f64,
            Number::Float(f) => f,
        }
    }

    fn as_u64(self) -> Option<u64> {
        match self {
            Number::PosInt(n) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn as_i64(self) -> Option<i64> {
        match self {
            Number::PosInt(n) => i64::try_from(n).ok(),
            Number::NegInt(n) => Some(n),
            Number::Float(_) => None,
        }
    }
}

/// One JSON value of any type, where an object is read as `M` and an array as `S`
/// (or skipped, with [`Skipped`]).
#[derive(Debug)]
pub(crate) enum Json<'a, M, S> {
    Null,
    Bool,
    Number(Number),
    Str(Cow<'a, str>),
    Array(S),
    Object(M),
}

/// A scalar field: strings and numbers are kept, objects and arrays only typed.
pub(crate) type Leaf<'a> = Json<'a, Skipped, Skipped>;
/// A nested object, or a string that may hold one.
pub(crate) type Obj<'a, T> = Json<'a, T, Skipped>;
/// An array of `T`.
pub(crate) type List<'a, T> = Json<'a, Skipped, Vec<T>>;

impl<M, S> Json<'_, M, S> {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Json::Null => Kind::Null,
            Json::Bool => Kind::Bool,
            Json::Number(_) => Kind::Number,
            Json::Str(_) => Kind::String,
            Json::Array(_) => Kind::Array,
            Json::Object(_) => Kind::Object,
        }
    }
}

/// How an object is read into a struct; implemented by [`json_object!`].
pub(crate) trait FromMap<'de>: Sized + Default {
    /// Reads the object's entries into `self`, which is as [`Default`] made it.
    fn fill<A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error>;

    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut object = Self::default();
        object.fill(map)?;
        Ok(object)
    }
}

/// Parses `text` into `target` if it holds an object, in place: a message struct is
/// large, and moving it through every layer of the parser costs more than filling it.
/// Returns the kind of value `text` holds.
pub(crate) fn parse_into<'de, T: FromMap<'de>>(text: &'de str, target: &mut T) -> serde_json::Result<Kind> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let kind = InPlace(target).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(kind)
}

/// Fills a struct in place from an object (see [`parse_into`]); other values are skipped.
pub(crate) struct InPlace<'t, T>(pub(crate) &'t mut T);

impl<'de, T: FromMap<'de>> de::DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kind, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: FromMap<'de>> Visitor<'de> for InPlace<'_, T> {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        self.0.fill(map)?;
        Ok(Kind::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Kind, A::Error> {
        Skipped::from_seq(seq).map(|_| Kind::Array)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Bool)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_f64<E>(self, f: f64) -> Result<Kind, E> {
        // As `serde_json::Value` has it: a number that is not finite is null.
        Ok(if f.is_finite() { Kind::Number } else { Kind::Null })
    }

    fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::String)
    }

    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kind, D::Error> {
        de::DeserializeSeed::deserialize(self, deserializer)
    }
}

/// Large structs that few messages hold stay out of line, so that every message is small to build and move.
impl<'de, T: FromMap<'de>> FromMap<'de> for Box<T> {
    fn fill<A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error> {
        (**self).fill(map)
    }
}

/// How an array is read.
pub(crate) trait FromSeq<'de>: Sized {
    fn from_seq<A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error>;
}

impl<'de, T: Deserialize<'de>> FromSeq<'de> for Vec<T> {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }
}

/// A value read and dropped. Numbers and strings are parsed, not just scanned, so
/// that a skipped field is as valid or invalid as it would be anywhere else.
#[derive(Debug, Default)]
pub(crate) struct Skipped;

impl<'de> FromMap<'de> for Skipped {
    fn fill<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<Skipped, Skipped>()?.is_some() {}
        Ok(())
    }
}

impl<'de> FromSeq<'de> for Skipped {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<Skipped>()?.is_some() {}
        Ok(Skipped)
    }
}

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Leaf::deserialize(deserializer).map(|_| Skipped)
    }
}

impl<'de, M: FromMap<'de>, S: FromSeq<'de>> Deserialize<'de> for Json<'de, M, S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor(PhantomData))
    }
}

struct JsonVisitor<M, S>(PhantomData<(M, S)>);

/// Mirrors serde_json's own `Value` visitor, so that numbers come out as a
/// `serde_json::Number` would hold them.
impl<'de, M: FromMap<'de>, S: FromSeq<'de>> Visitor<'de> for JsonVisitor<M, S> {
    type Value = Json<'de, M, S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool)
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(match u64::try_from(n) {
            Ok(n) => Number::PosInt(n),
            Err(_) => Number::NegInt(n),
        }))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(Number::PosInt(n)))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(if f.is_finite() { Json::Number(Number::Float(f)) } else { Json::Null })
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        S::from_seq(seq).map(Json::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        M::from_map(map).map(Json::Object)
    }
}

/// An object key, borrowed unless it holds escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// `key` in ASCII lower case, in `buffer`; `None` when it is too long to be a known key.
pub(crate) fn lower_case<'b>(key: &str, buffer: &'b mut [u8; LONGEST_KEY]) -> Option<&'b [u8]> {
    let lowered = buffer.get_mut(..key.len())?;
    for (to, from) in lowered.iter_mut().zip(key.bytes()) {
        *to = from.to_ascii_lowercase();
    }
    Some(lowered)
}

/// Declares a struct read from a JSON object: each field is a [`Slot`] filled by
/// the keys equal, ignoring ASCII case, to one of its lower-case spellings (byte
/// strings); every other key is skipped. Whoever reads a field asks for all its
/// spellings (see [`Slot::get`]).
macro_rules! json_object {
    ($(#[$meta:meta])* struct $name:ident {
        $($(#[$field_meta:meta])* $field:ident: $type:ty = $($spelling:literal)|+,)*
    }) => {
        $(#[$meta])*
        pub(crate) struct $name<'a> {
            $($(#[$field_meta])* pub(crate) $field: $crate::decode::json::Slot<'a, $type>,)*
        }

        impl Default for $name<'_> {
            fn default() -> Self {
                $name { $($field: $crate::decode::json::Slot::default(),)* }
            }
        }

        impl<'de> $crate::decode::json::FromMap<'de> for $name<'de> {
            fn fill<A: serde::de::MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
                let mut buffer = [0u8; $crate::decode::json::LONGEST_KEY];
                while let Some($crate::decode::json::Key(key)) = map.next_key()? {
                    match $crate::decode::json::lower_case(&key, &mut buffer) {
                        $(Some($($spelling)|+) => self.$field.push(key, map.next_value()?),)*
                        _ => {
                            map.next_value::<$crate::decode::json::Skipped>()?;
                        }
                    }
                }
                Ok(())
            }
        }
    };
}
pub(crate) use json_object;

/// Where a value sits in the message, for error messages: `Records[0].Sns.Message.createTime`.
/// Built only when an error needs it.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'static str),
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    pub(crate) fn key(&'p self, name: &'static str) -> Path<'p> {
        Path::Key(self, name)
    }

    pub(crate) fn index(&'p self, index: usize) -> Path<'p> {
        Path::Index(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, name) => f.write_str(name),
            Path::Key(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

pub(crate) fn missing(at: &Path, names: &[&'static str]) -> DecodeError {
    DecodeError::MissingField { field: at.key(names[0]).to_string() }
}

fn invalid(at: &Path, names: &[&'static str], detail: String) -> DecodeError {
    DecodeError::InvalidField { field: at.key(names[0]).to_string(), detail }
}

/// One key of an object and its value.
type Entry<'a, V> = (Cow<'a, str>, V);

/// Every value given for one field: almost always exactly one.
pub(crate) struct Slot<'a, V> {
    first: Option<Entry<'a, V>>,
    /// Repeated keys and other spellings, kept so that the right one wins whatever
    /// the order. Boxed: structs hold many slots, and this is almost always empty
    /// (8 bytes instead of a `Vec`'s 24).
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<Entry<'a, V>>>>,
}

impl<V> Default for Slot<'_, V> {
    fn default() -> Self {
        Slot { first: None, more: None }
    }
}

impl<'a, V> Slot<'a, V> {
    pub(crate) fn push(&mut self, key: Cow<'a, str>, value: V) {
        if self.first.is_none() {
            self.first = Some((key, value));
        } else {
            self.more.get_or_insert_default().push((key, value));
        }
    }

    /// The value of the first of `names` present: an exact spelling first (its last
    /// value if repeated), else a key differing only in ASCII case (the smallest).
    /// Inlined: every field read goes through here, almost always to the one key.
    #[inline]
    pub(crate) fn get(&self, names: &[&str]) -> Option<&V> {
        let (key, value) = self.first.as_ref()?;
        if self.more.is_some() {
            return self.get_among_several(names);
        }
        // The usual case, one key: it was put here for matching one of the slot's
        // spellings ignoring case, and every reader asks for all of them, so it
        // wins whichever tier it matches in.
        debug_assert!(names.iter().any(|name| key.eq_ignore_ascii_case(name)), "{key} read as {names:?}");
        Some(value)
    }

    /// [`Slot::get`] when keys were repeated or spelled several ways.
    #[cold]
    fn get_among_several(&self, names: &[&str]) -> Option<&V> {
        let entries = || self.first.iter().chain(self.more.iter().flat_map(|more| more.iter()));
        for name in names {
            if let Some((_, value)) = entries().filter(|(key, _)| key == name).last() {
                return Some(value);
            }
        }
        for name in names {
            let mut smallest: Option<&Entry<'a, V>> = None;
            for entry in entries().filter(|(key, _)| key.eq_ignore_ascii_case(name)) {
                if smallest.is_none_or(|(key, _)| entry.0 <= *key) {
                    smallest = Some(entry);
                }
            }
            if let Some((_, value)) = smallest {
                return Some(value);
            }
        }
        None
    }
}

impl<M, S> Slot<'_, Json<'_, M, S>> {
    /// Whether the field is present with a non-null value (used to recognise formats).
    pub(crate) fn has(&self, names: &[&str]) -> bool {
        self.get(names).is_some_and(|value| value.kind() != Kind::Null)
    }

    /// The value, `null` counting as absent.
    pub(crate) fn value(&self, names: &[&str]) -> Option<&Json<'_, M, S>> {
        self.get(names).filter(|value| value.kind() != Kind::Null)
    }

    /// An optional string; `""` counts as absent.
    pub(crate) fn string(&self, at: &Path, names: &[&'static str]) -> Result<Option<&str>, DecodeError> {
        match self.value(names) {
            None => Ok(None),
            Some(Json::Str(s)) if s.is_empty() => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(at, names, format!("expected a string, found {}", other.kind()))),
        }
    }

    pub(crate) fn required_string(&self, at: &Path, names: &[&'static str]) -> Result<&str, DecodeError> {
        self.string(at, names)?.ok_or_else(|| missing(at, names))
    }

    /// A required deployment id.
    pub(crate) fn deployment_id(&self, at: &Path, names: &[&'static str]) -> Result<&str, DecodeError> {
        self.optional_deployment_id(at, names)?.ok_or_else(|| missing(at, names))
    }

    /// A deployment id that may be absent (rollback links).
    pub(crate) fn optional_deployment_id(
        &self,
        at: &Path,
        names: &[&'static str],
    ) -> Result<Option<&str>, DecodeError> {
        self.string(at, names)?.map(|id| checked_id(at, names, id, MAX_DEPLOYMENT_ID_LEN)).transpose()
    }

    /// A required target id. EC2 instance ARNs (SNS instance triggers, the deprecated
    /// instance summaries) are reduced to the bare instance id that the API's
    /// `targetId` and EventBridge's `instanceId` carry, so all sources agree.
    pub(crate) fn target_id(&self, at: &Path, names: &[&'static str]) -> Result<&str, DecodeError> {
        let raw = self.required_string(at, names)?;
        // Only ARNs are searched: setting up a substring search costs more than the rest.
        let id = match raw.starts_with("arn:").then(|| raw.rsplit_once(":instance/")).flatten() {
            Some((prefix, instance)) if prefix.starts_with("arn:") => instance,
            _ => raw,
        };
        checked_id(at, names, id, MAX_TARGET_ID_LEN)
    }

    /// A deployment status in any vocabulary. Values without a meaning (`unknown`, or
    /// a status AWS adds later) give `None` rather than an error: the rest of the
    /// message is still worth keeping.
    pub(crate) fn status(&self, at: &Path, names: &[&'static str]) -> Result<Option<Status>, DecodeError> {
        Ok(self.string(at, names)?.and_then(Status::parse))
    }

    /// A target or lifecycle-event status; unknown values give `None` as for [`Slot::status`].
    pub(crate) fn target_status(
        &self,
        at: &Path,
        names: &[&'static str],
    ) -> Result<Option<TargetStatus>, DecodeError> {
        Ok(self.string(at, names)?.and_then(TargetStatus::parse))
    }

    /// A timestamp in any of the encodings [`time::parse`] understands; a blank string counts as absent.
    pub(crate) fn time(&self, at: &Path, names: &[&'static str]) -> Result<Option<Millis>, DecodeError> {
        let Some(value) = self.value(names) else {
            return Ok(None);
        };
        time::parse(value).map_err(|detail| DecodeError::InvalidTimestamp { field: at.key(names[0]).to_string(), detail })
    }

    /// A count: an integer, or a string of digits (the SNS documentation sample quotes
    /// its counts), at most [`MAX_COUNT`]. Absent counts are zero.
    pub(crate) fn count(&self, at: &Path, names: &[&'static str]) -> Result<u64, DecodeError> {
        let count = match self.value(names) {
            None => Some(0),
            Some(Json::Number(n)) => n.as_u64(),
            Some(Json::Str(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match count {
            Some(count) if count <= MAX_COUNT => Ok(count),
            Some(_) => Err(invalid(at, names, format!("more than {MAX_COUNT} targets"))),
            None => Err(invalid(at, names, "expected a non-negative integer".to_owned())),
        }
    }

    /// An optional array.
    pub(crate) fn array(&self, at: &Path, names: &[&'static str]) -> Result<Option<&S>, DecodeError> {
        match self.value(names) {
            None => Ok(None),
            Some(Json::Array(items)) => Ok(Some(items)),
            Some(other) => Err(invalid(at, names, format!("expected an array, found {}", other.kind()))),
        }
    }
}

fn checked_id<'s>(at: &Path, names: &[&'static str], id: &'s str, max_len: usize) -> Result<&'s str, DecodeError> {
    // Real ids are printable ASCII, whose bytes are characters: one pass over the
    // bytes clears them, without decoding characters.
    if !id.is_empty() && id.len() <= max_len && id.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Ok(id);
    }
    if id.is_empty() {
        Err(missing(at, names))
    } else if id.chars().count() > max_len {
        Err(invalid(at, names, format!("longer than {max_len} characters")))
    } else if id.chars().any(char::is_control) {
        Err(invalid(at, names, format!("contains control characters: {}", excerpt(id))))
    } else {
        Ok(id)
    }
}

/// A nested object: borrowed from the message, or parsed from the string that encoded it.
pub(crate) enum Nested<'s, T> {
    Borrowed(&'s T),
    Parsed(T),
}

impl<T> Deref for Nested<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Nested::Borrowed(object) => object,
            Nested::Parsed(object) => object,
        }
    }
}

impl<'s, T> Nested<'s, Box<T>> {
    pub(crate) fn unboxed(self) -> Nested<'s, T> {
        match self {
            Nested::Borrowed(object) => Nested::Borrowed(object),
            Nested::Parsed(object) => Nested::Parsed(*object),
        }
    }
}

/// Parses an object encoded as a JSON string; `path` names the field holding it.
pub(crate) fn embedded<'s, T: FromMap<'s>>(text: &'s str, path: &Path) -> Result<T, DecodeError> {
    match serde_json::from_str::<Obj<'s, T>>(text) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(other) => Err(DecodeError::InvalidField {
            field: path.to_string(),
            detail: format!("expected an object encoded as a string, found {}", other.kind()),
        }),
        Err(err) => Err(DecodeError::InvalidJson { path: path.to_string(), detail: err.to_string() }),
    }
}

impl<'s, T: FromMap<'s>> Slot<'s, Obj<'s, T>> {
    /// A nested object, given either as an object or as a string holding its JSON
    /// encoding. `""` counts as absent; `"{}"` and `{}` give an empty object.
    pub(crate) fn object(&'s self, at: &Path, names: &[&'static str]) -> Result<Option<Nested<'s, T>>, DecodeError> {
        match self.value(names) {
            None => Ok(None),
            Some(Json::Object(object)) => Ok(Some(Nested::Borrowed(object))),
            Some(Json::Str(s)) if s.trim().is_empty() => Ok(None),
            Some(Json::Str(s)) => embedded(s, &at.key(names[0])).map(|object| Some(Nested::Parsed(object))),
            Some(other) => Err(invalid(at, names, format!("expected an object, found {}", other.kind()))),
        }
    }

    pub(crate) fn required_object(&'s self, at: &Path, names: &[&'static str]) -> Result<Nested<'s, T>, DecodeError> {
        self.object(at, names)?.ok_or_else(|| missing(at, names))
    }
}

impl<'s, T> Slot<'s, List<'s, Obj<'s, T>>> {
    /// The elements of an array, each of which must be an object (errors name the
    /// element: `key[i]`).
    pub(crate) fn objects(&'s self, at: &Path, names: &[&'static str]) -> Result<Option<Objects<'s, T>>, DecodeError> {
        let Some(items) = self.array(at, names)? else {
            return Ok(None);
        };
        let path = at.key(names[0]);
        if let Some((index, item)) = items.iter().enumerate().find(|(_, item)| !matches!(item, Json::Object(_))) {
            return Err(DecodeError::InvalidField {
                field: path.index(index).to_string(),
                detail: format!("expected an object, found {}", item.kind()),
            });
        }
        Ok(Some(Objects(items)))
    }

    pub(crate) fn required_objects(&'s self, at: &Path, names: &[&'static str]) -> Result<Objects<'s, T>, DecodeError> {
        self.objects(at, names)?.ok_or_else(|| missing(at, names))
    }
}

/// An array checked to hold only objects.
pub(crate) struct Objects<'s, T>(&'s [Obj<'s, T>]);

impl<'s, T> Objects<'s, T> {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &'s T> + use<'s, T> {
        self.0.iter().filter_map(|item| match item {
            Json::Object(object) => Some(object),
            _ => None,
        })
    }

    /// What `read` makes of each element and its index, stopping at the first error;
    /// the vector is allocated once, at its final size.
    pub(crate) fn read_each<R>(
        &self,
        mut read: impl FnMut(usize, &'s T) -> Result<R, DecodeError>,
    ) -> Result<Vec<R>, DecodeError> {
        let mut read_all = Vec::with_capacity(self.len());
        for (index, object) in self.iter().enumerate() {
            read_all.push(read(index, object)?);
        }
        Ok(read_all)
    }
}

impl<'a> Leaf<'a> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    json_object! {
        /// Fields for the tests below.
        struct Sample {
            error_code: Leaf<'a> = b"errorcode",
            message: Leaf<'a> = b"message",
            name: Leaf<'a> = b"lifecycleeventname" | b"lifecycleevent",
            a: Leaf<'a> = b"a",
            b: Leaf<'a> = b"b",
            c: Obj<'a, Counts<'a>> = b"c",
            d: Leaf<'a> = b"d",
            o: Obj<'a, Counts<'a>> = b"o",
            p: Obj<'a, Counts<'a>> = b"p",
            q: Obj<'a, Counts<'a>> = b"q",
            ok: Leaf<'a> = b"ok",
            ctl: Leaf<'a> = b"ctl",
            long: Leaf<'a> = b"long",
            num: Leaf<'a> = b"num",
            empty: Leaf<'a> = b"empty",
            absent: Leaf<'a> = b"absent",
            arn: Leaf<'a> = b"arn",
            ecs: Leaf<'a> = b"ecs",
        }
    }

    json_object! {
        struct Counts {
            failed: Leaf<'a> = b"failed",
            max: Leaf<'a> = b"max",
            over: Leaf<'a> = b"over",
            huge: Leaf<'a> = b"huge",
            text: Leaf<'a> = b"text",
            a: Leaf<'a> = b"a",
            b: Leaf<'a> = b"b",
            c: Leaf<'a> = b"c",
            d: Leaf<'a> = b"d",
        }
    }

    fn parse<'a, T: FromMap<'a>>(text: &'a str) -> T {
        match serde_json::from_str::<Obj<'a, T>>(text).unwrap() {
            Json::Object(object) => object,
            other => panic!("not an object: {:?}", other.kind()),
        }
    }

    const ROOT: Path = Path::Root;

    #[test]
    fn keys_match_exactly_first_then_ignoring_case() {
        let f: Sample = parse(r#"{"errorCode": "a", "ErrorCode": "b", "Message": "m"}"#);
        assert_eq!(f.error_code.string(&ROOT, &["ErrorCode"]).unwrap(), Some("b"));
        assert_eq!(f.error_code.string(&ROOT, &["errorCode"]).unwrap(), Some("a"));
        assert_eq!(f.error_code.string(&ROOT, &["ERRORCODE"]).unwrap(), Some("b"));
        assert_eq!(f.message.string(&ROOT, &["message"]).unwrap(), Some("m"));
    }

    #[test]
    fn repeated_keys_keep_the_last_value_and_case_variants_the_smallest_key() {
        let f: Sample = parse(r#"{"errorcode": "a", "errorcode": "b", "ERRORCODE": "c", "ErrorCODE": "d"}"#);
        assert_eq!(f.error_code.string(&ROOT, &["errorcode"]).unwrap(), Some("b"));
        assert_eq!(f.error_code.string(&ROOT, &["errorCode"]).unwrap(), Some("c"));
    }

    #[test]
    fn alternative_spellings_are_tried_in_order() {
        let f: Sample = parse(r#"{"LifecycleEvent": "Install"}"#);
        let names = ["lifecycleEventName", "LifecycleEvent"];
        assert_eq!(f.name.string(&ROOT, &names).unwrap(), Some("Install"));
        let at = Path::Root.key("lifecycleEvents");
        let err = f.absent.deployment_id(&at.index(0), &["absent"]).unwrap_err();
        assert_eq!(err.to_string(), "missing field `lifecycleEvents[0].absent`");
    }

    #[test]
    fn null_and_empty_strings_are_absent() {
        let f: Sample = parse(r#"{"a": null, "b": "", "c": "", "d": null}"#);
        assert_eq!(f.a.string(&ROOT, &["a"]).unwrap(), None);
        assert_eq!(f.b.string(&ROOT, &["b"]).unwrap(), None);
        assert!(f.c.object(&ROOT, &["c"]).unwrap().is_none());
        assert_eq!(f.d.time(&ROOT, &["d"]).unwrap(), None);
        assert!(!f.d.has(&["d"]));
    }

    #[test]
    fn objects_may_be_json_strings() {
        let f: Sample = parse(r#"{"o": "{\"Failed\":\"2\"}", "p": {"Failed": 3}, "q": "{}"}"#);
        let count = |slot: &Slot<'_, Obj<'_, Counts<'_>>>, key| {
            slot.object(&ROOT, &[key]).unwrap().unwrap().failed.count(&ROOT, &["Failed"]).unwrap()
        };
        assert_eq!(count(&f.o, "o"), 2);
        assert_eq!(count(&f.p, "p"), 3);
        assert_eq!(count(&f.q, "q"), 0);
    }

    #[test]
    fn malformed_embedded_objects_name_the_field() {
        let f: Sample = parse(r#"{"o": "{\"Failed\":", "p": "[1]", "q": 5}"#);
        let at = Path::Root.key("Message");
        let err = f.o.object(&at, &["o"]).err().unwrap();
        assert_eq!(err.reason(), "invalid_json");
        assert!(err.to_string().contains("Message.o"), "{err}");
        assert_eq!(f.p.object(&at, &["p"]).err().unwrap().reason(), "invalid_field");
        assert_eq!(f.q.object(&at, &["q"]).err().unwrap().reason(), "invalid_field");
    }

    #[test]
    fn counts_reject_negative_and_fractional_values() {
        let f: Counts = parse(r#"{"a": -1, "b": 1.5, "c": "x", "d": true}"#);
        for (slot, key) in [(&f.a, "a"), (&f.b, "b"), (&f.c, "c"), (&f.d, "d")] {
            assert_eq!(slot.count(&ROOT, &[key]).unwrap_err().reason(), "invalid_field", "{key}");
        }
    }

    #[test]
    fn counts_are_bounded() {
        let text = format!(
            r#"{{"max": {MAX_COUNT}, "over": {}, "huge": {}, "text": "{}"}}"#,
            MAX_COUNT + 1,
            u64::MAX,
            u64::MAX
        );
        let f: Counts = parse(&text);
        assert_eq!(f.max.count(&ROOT, &["max"]).unwrap(), MAX_COUNT);
        for (slot, key) in [(&f.over, "over"), (&f.huge, "huge"), (&f.text, "text")] {
            assert_eq!(slot.count(&ROOT, &[key]).unwrap_err().reason(), "invalid_field", "{key}");
        }
    }

    #[test]
    fn deployment_ids_are_checked() {
        let text = format!(
            r#"{{"ok": "d-ABC", "ctl": "d-\u0007x", "long": "{}", "num": 7, "empty": ""}}"#,
            "d".repeat(MAX_DEPLOYMENT_ID_LEN + 1)
        );
        let f: Sample = parse(&text);
        assert_eq!(f.ok.deployment_id(&ROOT, &["ok"]).unwrap(), "d-ABC");
        for (slot, key, reason) in [
            (&f.ctl, "ctl", "invalid_field"),
            (&f.long, "long", "invalid_field"),
            (&f.num, "num", "invalid_field"),
            (&f.empty, "empty", "missing_field"),
            (&f.absent, "absent", "missing_field"),
        ] {
            assert_eq!(slot.deployment_id(&ROOT, &[key]).unwrap_err().reason(), reason, "{key}");
        }
    }

    #[test]
    fn instance_arns_become_instance_ids() {
        let f: Sample = parse(
            r#"{"arn": "arn:aws:ec2:us-east-2:444455556666:instance/i-496589f7", "ecs": "my-cluster:my-service"}"#,
        );
        assert_eq!(f.arn.target_id(&ROOT, &["arn"]).unwrap(), "i-496589f7");
        assert_eq!(f.ecs.target_id(&ROOT, &["ecs"]).unwrap(), "my-cluster:my-service");
    }

    #[test]
    fn skipped_fields_are_parsed_as_strictly_as_any_other() {
        for bad in [r#"{"zzz": 1e400}"#, r#"{"zzz": ["\ud800"]}"#, r#"{"zzz": {"\udc00": 1}}"#] {
            assert_eq!(
                serde_json::from_str::<Obj<'_, Sample<'_>>>(bad).is_err(),
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
