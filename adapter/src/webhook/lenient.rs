//! Field types that never fail on a value of an unexpected type.
//!
//! Kapso makes every field optional and adds fields and shapes without notice; a
//! delivery refused for a mistyped field would be retried until Kapso pauses the
//! whole webhook. So a field of the wrong type reads as absent (the exact bytes
//! still reach the store in `payload_json`). Only malformed JSON is an error.
//!
//! Strings borrow from the body unless they contain escapes (`Cow`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A string field; numbers are kept as their decimal text (ids and timestamps
/// arrive both ways), anything else reads as absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text<'a>(Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    /// The value, `None` when absent, null, empty or not a string/number.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

/// An object field parsed as `T`; any other JSON type reads as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> Obj<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

/// An array of objects; elements that are not objects are skipped, a non-array reads as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// An array kept as its elements' raw text, captured in the same pass as the
/// rest of the body; anything else is remembered as not an array.
#[derive(Debug, Default, Clone)]
pub enum RawList<'a> {
    #[default]
    Absent,
    NotArray,
    Items(Vec<&'a RawValue>),
}

/// A boolean field: JSON `true` or the string `"true"` (any case); anything else is false.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the scalar `visit_*` methods of a visitor by returning a fallback value.
macro_rules! ignore_scalars {
    ($fallback:expr; $($method:ident: $ty:ty),*) => {
        $(fn $method<E: serde::de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok($fallback)
        })*
    };
}

struct TextVisitor<'a>(PhantomData<Text<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(v))))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_owned()))))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v))))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }

    ignore_scalars!(Text(None); visit_bool: bool);

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Text(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Text(None))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor(PhantomData))
    }
}

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|value| Obj(Some(value)))
    }

    ignore_scalars!(Obj(None);
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Obj(None))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Obj(item)) = seq.next_element::<Obj<T>>()? {
            items.extend(item);
        }
        Ok(List(items))
    }

    ignore_scalars!(List::default();
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(List::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| List::default())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

struct RawListVisitor<'a>(PhantomData<RawList<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for RawListVisitor<'a> {
    type Value = RawList<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(item);
        }
        Ok(RawList::Items(items))
    }

    ignore_scalars!(RawList::NotArray;
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawList::NotArray)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| RawList::NotArray)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawList<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawListVisitor(PhantomData))
    }
}

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = Flag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Flag(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Flag(v.eq_ignore_ascii_case("true")))
    }

    ignore_scalars!(Flag(false); visit_i64: i64, visit_u64: u64, visit_f64: f64);

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Flag(false))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Flag(false))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Flag(false))
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FlagVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Probe<'a> {
        #[serde(borrow)]
        text: Text<'a>,
        #[serde(borrow)]
        inner: Obj<Inner<'a>>,
        #[serde(borrow)]
        list: List<Inner<'a>>,
        flag: Flag,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Inner<'a> {
        #[serde(borrow)]
        id: Text<'a>,
    }

    fn probe(json: &str) -> Probe<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plain_strings_are_borrowed_and_escaped_ones_decoded() {
        let p = probe(r#"{"text":"plain"}"#);
        assert!(matches!(p.text.0, Some(Cow::Borrowed("plain"))));
        assert_eq!(probe(r#"{"text":"a\nb\u00e9"}"#).text.get(), Some("a\nbé"));
    }

    #[test]
    fn numbers_read_as_their_text() {
        assert_eq!(
            probe(r#"{"text":1730092800}"#).text.get(),
            Some("1730092800")
        );
        assert_eq!(probe(r#"{"text":-3}"#).text.get(), Some("-3"));
    }

    #[test]
    fn wrong_types_read_as_absent() {
        let p = probe(
            r#"{"text":{"x":[1,{"y":2}]},"inner":"nope","list":{"a":1},"flag":[true],"extra":null}"#,
        );
        assert_eq!(p.text.get(), None);
        assert!(p.inner.get().is_none());
        assert!(p.list.0.is_empty());
        assert!(!p.flag.0);
        let p = probe(r#"{"text":true,"inner":[1,2],"list":"x","flag":1}"#);
        assert_eq!(p.text.get(), None);
        assert!(p.inner.get().is_none());
    }

    #[test]
    fn null_and_empty_read_as_absent() {
        let p = probe(r#"{"text":null,"inner":null,"list":null,"flag":null}"#);
        assert_eq!(p.text.get(), None);
        assert_eq!(probe(r#"{"text":""}"#).text.get(), None);
    }

    #[test]
    fn lists_keep_objects_and_skip_other_elements() {
        let p = probe(r#"{"list":[{"id":"a"},3,null,"s",{"id":7},[]]}"#);
        let ids: Vec<_> = p.list.0.iter().map(|i| i.id.get().unwrap()).collect();
        assert_eq!(ids, ["a", "7"]);
    }

    #[test]
    fn flag_accepts_true_and_the_string_true() {
        assert!(probe(r#"{"flag":true}"#).flag.0);
        assert!(probe(r#"{"flag":"TRUE"}"#).flag.0);
        assert!(!probe(r#"{"flag":"yes"}"#).flag.0);
    }

    #[test]
    fn raw_list_keeps_each_element_verbatim() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Envelope<'a> {
            #[serde(borrow)]
            data: RawList<'a>,
        }
        let envelope: Envelope<'_> =
            serde_json::from_str(r#"{"data":[ {"a": 1} ,"x\n",3]}"#).unwrap();
        let RawList::Items(items) = envelope.data else {
            panic!("not read as a list");
        };
        let raw: Vec<_> = items.iter().map(|i| i.get()).collect();
        assert_eq!(raw, [r#"{"a": 1}"#, r#""x\n""#, "3"]);
        for not_array in [
            r#"{"data":{"a":[]}}"#,
            r#"{"data":null}"#,
            r#"{"data":"[]"}"#,
        ] {
            let envelope: Envelope<'_> = serde_json::from_str(not_array).unwrap();
            assert!(matches!(envelope.data, RawList::NotArray), "{not_array}");
        }
        let envelope: Envelope<'_> = serde_json::from_str("{}").unwrap();
        assert!(matches!(envelope.data, RawList::Absent));
    }

    #[test]
    fn malformed_json_still_fails() {
        assert!(serde_json::from_str::<Probe<'_>>(r#"{"text":"x""#).is_err());
        assert!(serde_json::from_str::<Probe<'_>>(r#"{"inner":{"id":}}"#).is_err());
    }
}
