//! A JSON answer held as it was read: strings and keys borrowed from the body where they carry
//! no escapes, objects as lists of pairs (small, read a key at a time). The paths of a mapping
//! — `a.b[0]."c d"`, projections such as `[].results[]`, first matches such as
//! `actions[?action_type=='lead'].value | [0]` — are walked on it directly; any other
//! expression is handed to the JMESPath interpreter, which gives the same answers at a cost per
//! row that a page of thousands of rows notices.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::borrow::Cow;
use std::marker::PhantomData;

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// Integers are kept exact (ids of 18 digits); others as read.
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// Parses a body: UTF-8 text holding one JSON value.
pub fn parse(body: &[u8]) -> Result<Json<'_>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8 text".to_string())?;
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

impl<'a> Json<'a> {
    /// The member `key` of an object (the last, as a JSON reader keeps duplicates).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(pairs) => pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Json::Int(n) => Some(n as f64),
            Json::Uint(n) => Some(n as f64),
            Json::Float(n) => Some(n),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The text of a scalar: a string as it is, a number as written.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Json::Str(s) => Some(s.to_string()),
            Json::Int(n) => Some(n.to_string()),
            Json::Uint(n) => Some(n.to_string()),
            Json::Float(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// What kind of value it is, for an error.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "nothing",
            Json::Bool(_) => "a boolean",
            Json::Int(_) | Json::Uint(_) | Json::Float(_) => "a number",
            Json::Str(_) => "a string",
            Json::Array(_) => "a list",
            Json::Object(_) => "an object",
        }
    }

    /// The value as an error shows it: short, JSON-like.
    pub fn shown(&self) -> String {
        let s = match self {
            Json::Null => return "nothing".into(),
            Json::Str(s) => format!("\"{s}\""),
            other => serde_json::to_string(other).unwrap_or_else(|_| other.kind().to_string()),
        };
        if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s }
    }

    /// A value owning its text, from one the interpreter answered.
    fn from_value(v: serde_json::Value) -> Json<'static> {
        use serde_json::Value;
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Json::Uint(u),
                (_, Some(i)) => Json::Int(i),
                _ => Json::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Json::Str(Cow::Owned(s)),
            Value::Array(a) => Json::Array(a.into_iter().map(Json::from_value).collect()),
            Value::Object(o) => {
                Json::Object(o.into_iter().map(|(k, v)| (Cow::Owned(k), Json::from_value(v))).collect())
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor(PhantomData))
    }
}

struct ValueVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'a>, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'a>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'a>, E> {
        Ok(Json::Int(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'a>, E> {
        Ok(Json::Uint(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json<'a>, E> {
        Ok(Json::Float(n))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'a>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'a>, E> {
        Ok(Json::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'a>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'a>, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(Key(k)) = map.next_key()? {
            pairs.push((k, map.next_value()?));
        }
        Ok(Json::Object(pairs))
    }
}

/// An object's key, borrowed where it can be.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Int(n) => s.serialize_i64(*n),
            Json::Uint(n) => s.serialize_u64(*n),
            Json::Float(n) => s.serialize_f64(*n),
            Json::Str(t) => s.serialize_str(t),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for it in items {
                    seq.serialize_element(it)?;
                }
                seq.end()
            }
            Json::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

/// Which parts of an answer its expressions read: a page is built only of those, the rest
/// skipped as it is read (most of a platform's answer is rows, and most of a row's bytes feed a
/// counter, but building the parts nobody reads was most of the cost of a page).
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    /// All of it.
    All,
    /// These members (each as wanted), and the others too when `rest`. A list is read item by
    /// item as wanted.
    Fields { keep: Vec<(String, Want)>, rest: bool },
    /// Items of a list whose `key` is one of `values`, with only `key` and `field` (what first
    /// matches read); other items are left out.
    Match { key: String, values: Vec<String>, field: String },
    /// The items of a list are rows, each read into the slots of its expressions (see `Slots`).
    Rows(std::sync::Arc<Slots>),
}

/// Where each expression of a row finds its value, when all are paths of fields or first
/// matches: a row is read straight into one slot per expression (a list of values, in the
/// order the expressions were given), built of nothing else.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Slots {
    fields: Vec<(String, SlotNode)>,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum SlotNode {
    Leaf(Vec<usize>),
    Tree(Slots),
    /// A list whose first item with `key` equal to a value gives that value's slots `field`.
    Match {
        key: String,
        field: String,
        values: Vec<(String, usize)>,
    },
}

impl Slots {
    /// The slots of `exprs`, or `None` when one of them is not a shape read this way.
    pub fn new(exprs: &[&Expr]) -> Option<Slots> {
        let mut root = Slots { fields: Vec::new(), len: exprs.len() };
        for (slot, e) in exprs.iter().enumerate() {
            let fields = |steps: &[Step]| -> Option<Vec<String>> {
                steps.iter().map(|s| if let Step::Field(f) = s { Some(f.clone()) } else { None }).collect()
            };
            match &e.shape {
                Shape::Path(steps) => root.insert(&fields(steps)?, Leaf(slot))?,
                Shape::First { list, key, value, field } => {
                    root.insert(&fields(list)?, First(key, field, value, slot))?
                }
                Shape::Other => return None,
            }
        }
        Some(root)
    }

    fn insert(&mut self, path: &[String], end: End) -> Option<()> {
        let (head, rest) = path.split_first()?;
        let at = match self.fields.iter().position(|(k, _)| k == head) {
            Some(i) => i,
            None => {
                let node = match (rest.is_empty(), &end) {
                    (false, _) => SlotNode::Tree(Slots::default()),
                    (true, Leaf(_)) => SlotNode::Leaf(Vec::new()),
                    (true, First(key, field, ..)) => {
                        SlotNode::Match { key: key.to_string(), field: field.to_string(), values: Vec::new() }
                    }
                };
                self.fields.push((head.clone(), node));
                self.fields.len() - 1
            }
        };
        // A path that is a prefix of another, or two matches over one list that read it
        // differently: not this shape.
        match (&mut self.fields[at].1, rest.is_empty(), end) {
            (SlotNode::Tree(t), false, end) => t.insert(rest, end),
            (SlotNode::Leaf(slots), true, Leaf(slot)) => {
                slots.push(slot);
                Some(())
            }
            (SlotNode::Match { key, field, values }, true, First(k, f, v, slot)) if key == k && field == f => {
                values.push((v.to_string(), slot));
                Some(())
            }
            _ => None,
        }
    }
}

enum End<'e> {
    Leaf(usize),
    First(&'e str, &'e str, &'e str, usize),
}
use End::{First, Leaf};

/// Visitor methods that read a scalar and keep nothing of it.
macro_rules! skip_other_values {
    () => {
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
    };
}

/// Reads a list for first matches: each item's key, and its field when the key is wanted.
struct MatchSeed<'s, 'v, 'de> {
    key: &'s str,
    field: &'s str,
    values: &'s [(String, usize)],
    slots: &'v mut Vec<Json<'de>>,
    /// Reading an item, not the list.
    item: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for MatchSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MatchSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    skip_other_values!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.item {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let MatchSeed { key, field, values, slots, .. } = self;
        while seq.next_element_seed(MatchSeed { key, field, values, slots: &mut *slots, item: true })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if !self.item {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let (mut k, mut f) = (Json::Null, Json::Null);
        while let Some(Key(name)) = map.next_key()? {
            if name == self.key {
                k = map.next_value()?;
            } else if name == self.field {
                f = map.next_value()?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        let Some(k) = k.as_str() else { return Ok(()) };
        for (want, i) in self.values {
            if want == k && self.slots[*i].is_null() {
                self.slots[*i] = f.clone();
            }
        }
        Ok(())
    }
}

/// Reads one row into its slots.
struct SlotSeed<'s, 'v, 'de>(&'s Slots, &'v mut Vec<Json<'de>>);

impl<'de> serde::de::DeserializeSeed<'de> for SlotSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SlotSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    // What is not an object has none of the fields: its slots stay empty.
    skip_other_values!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let SlotSeed(tree, slots) = self;
        while let Some(Key(k)) = map.next_key()? {
            match tree.fields.iter().find(|(name, _)| *name == k).map(|(_, n)| n) {
                Some(SlotNode::Leaf(at)) => {
                    let v: Json = map.next_value()?;
                    for &i in &at[1..] {
                        slots[i] = v.clone();
                    }
                    slots[at[0]] = v;
                }
                Some(SlotNode::Tree(t)) => map.next_value_seed(SlotSeed(t, slots))?,
                Some(SlotNode::Match { key, field, values }) => {
                    map.next_value_seed(MatchSeed { key, field, values, slots: &mut *slots, item: false })?
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl Want {
    /// What two expressions read together.
    pub fn merge(self, other: Want) -> Want {
        match (self, other) {
            (Want::All, _) | (_, Want::All) | (Want::Rows(_), _) | (_, Want::Rows(_)) => Want::All,
            (Want::Fields { keep: mut a, rest: ra }, Want::Fields { keep: b, rest: rb }) => {
                for (k, w) in b {
                    match a.iter().position(|(x, _)| *x == k) {
                        Some(i) => {
                            let old = std::mem::replace(&mut a[i].1, Want::All);
                            a[i].1 = old.merge(w);
                        }
                        None => a.push((k, w)),
                    }
                }
                Want::Fields { keep: a, rest: ra || rb }
            }
            (Want::Match { key, mut values, field }, Want::Match { key: k2, values: v2, field: f2 })
                if key == k2 && field == f2 =>
            {
                values.extend(v2);
                Want::Match { key, values, field }
            }
            (a, b) => a.into_fields().merge(b.into_fields()),
        }
    }

    /// A match read as its two members of every item (when something else reads the list).
    fn into_fields(self) -> Want {
        match self {
            Want::Match { key, field, .. } => {
                Want::Fields { keep: vec![(key, Want::All), (field, Want::All)], rest: false }
            }
            w => w,
        }
    }

    /// `inner`, reached through `steps` (lists passed through).
    fn along(steps: &[Step], inner: Want, rest: bool) -> Want {
        steps.iter().rev().fold(inner, |w, step| match step {
            Step::Field(f) => Want::Fields { keep: vec![(f.clone(), w)], rest },
            Step::Index(_) | Step::Flatten => w,
        })
    }

    /// A page whose rows, found by `rows`, are read as `row` wants; the rest of the page (paging,
    /// errors) whole.
    pub fn page(rows: &Expr, row: Want) -> Want {
        match &rows.shape {
            Shape::Path(steps) if row != Want::All => Want::along(steps, row, true),
            _ => Want::All,
        }
    }

    /// Whether rows are read into slots.
    pub fn slotted(&self) -> bool {
        match self {
            Want::Rows(_) => true,
            Want::Fields { keep, .. } => keep.iter().any(|(_, w)| w.slotted()),
            _ => false,
        }
    }

    /// Parses a body as wanted.
    pub fn parse<'b>(&self, body: &'b [u8]) -> Result<Json<'b>, String> {
        let text = std::str::from_utf8(body).map_err(|_| "not UTF-8 text".to_string())?;
        let mut de = serde_json::Deserializer::from_str(text);
        let v = serde::de::DeserializeSeed::deserialize(Guided(self), &mut de).map_err(|e| format!("not JSON: {e}"))?;
        de.end().map_err(|e| format!("not JSON: {e}"))?;
        Ok(v)
    }
}

struct Guided<'w>(&'w Want);

impl<'de> serde::de::DeserializeSeed<'de> for Guided<'_> {
    type Value = Json<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        match self.0 {
            Want::All => Json::deserialize(d),
            w => d.deserialize_any(GuidedVisitor(w)),
        }
    }
}

struct GuidedVisitor<'w>(&'w Want);

impl<'de> Visitor<'de> for GuidedVisitor<'_> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Int(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Uint(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Json::Float(n))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        if let Want::Rows(slots) = self.0 {
            loop {
                let mut row = vec![Json::Null; slots.len];
                if seq.next_element_seed(SlotSeed(slots, &mut row))?.is_none() {
                    return Ok(Json::Array(items));
                }
                items.push(Json::Array(row));
            }
        }
        while let Some(v) = seq.next_element_seed(Guided(self.0))? {
            if !(matches!(self.0, Want::Match { .. }) && v.is_null()) {
                items.push(v);
            }
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        match self.0 {
            Want::Fields { keep, rest } => {
                let mut pairs = Vec::with_capacity(keep.len());
                while let Some(Key(k)) = map.next_key()? {
                    match keep.iter().find(|(name, _)| *name == k) {
                        Some((_, w)) => pairs.push((k, map.next_value_seed(Guided(w))?)),
                        None if *rest => pairs.push((k, map.next_value()?)),
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Json::Object(pairs))
            }
            Want::Match { key, values, field } => {
                let (mut kv, mut fv) = (None, None);
                while let Some(Key(k)) = map.next_key()? {
                    if k == key.as_str() {
                        kv = Some((k, map.next_value::<Json>()?));
                    } else if k == field.as_str() {
                        fv = Some((k, map.next_value::<Json>()?));
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                match kv {
                    Some(kv) if kv.1.as_str().is_some_and(|v| values.iter().any(|x| x == v)) => {
                        Ok(Json::Object(std::iter::once(kv).chain(fv).collect()))
                    }
                    _ => Ok(Json::Null),
                }
            }
            Want::All | Want::Rows(_) => ValueVisitor(PhantomData).visit_map(map),
        }
    }
}

/// What an expression found: a value of the answer, several (a projection), or one the
/// interpreter made.
pub enum Found<'p, 'a> {
    Nothing,
    One(&'p Json<'a>),
    Many(Vec<&'p Json<'a>>),
    Made(Json<'a>),
}

impl<'p, 'a> Found<'p, 'a> {
    /// The value found; a projection is a list.
    pub fn value(&self) -> Cow<'_, Json<'a>> {
        match self {
            Found::Nothing => Cow::Owned(Json::Null),
            Found::One(v) => Cow::Borrowed(*v),
            Found::Made(v) => Cow::Borrowed(v),
            Found::Many(items) => Cow::Owned(Json::Array(items.iter().map(|v| (*v).clone()).collect())),
        }
    }

    /// The items of a list found, or what else was found.
    pub fn items(&self) -> Result<Vec<&Json<'a>>, &'static str> {
        match self {
            Found::Nothing => Ok(Vec::new()),
            Found::Many(items) => Ok(items.clone()),
            Found::One(Json::Array(a)) | Found::Made(Json::Array(a)) => Ok(a.iter().collect()),
            Found::One(Json::Null) | Found::Made(Json::Null) => Ok(Vec::new()),
            Found::One(v) => Err(v.kind()),
            Found::Made(v) => Err(v.kind()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    /// `[]`: the items of a list (lists in it flattened one level); what follows applies to
    /// each, and what it finds nothing in is left out.
    Flatten,
}

/// An expression, compiled, with the shapes that are walked directly taken apart.
pub struct Expr {
    pub text: String,
    compiled: jmespath::Expression<'static>,
    shape: Shape,
}

enum Shape {
    Path(Vec<Step>),
    /// `list[?key=='value'].field | [0]`: the first item whose key is the value.
    First {
        list: Vec<Step>,
        key: String,
        value: String,
        field: String,
    },
    Other,
}

impl Expr {
    /// Compiles `text`; `name` names the field in an error.
    pub fn new(name: &str, text: &str) -> Result<Expr, String> {
        let compiled = jmespath::compile(text).map_err(|e| format!("mapping.{name} `{text}`: {e}"))?;
        let shape = match path(text) {
            Some(p) => Shape::Path(p),
            None => first_match(text).map_or(Shape::Other, |(list, key, value, field)| Shape::First {
                list,
                key,
                value,
                field,
            }),
        };
        Ok(Expr { text: text.to_string(), compiled, shape })
    }

    /// What of a value the expression reads.
    pub fn want(&self) -> Want {
        match &self.shape {
            Shape::Path(steps) => Want::along(steps, Want::All, false),
            Shape::First { list, key, value, field } => Want::along(
                list,
                Want::Match { key: key.clone(), values: vec![value.clone()], field: field.clone() },
                false,
            ),
            Shape::Other => Want::All,
        }
    }

    /// What the expression finds in `v`.
    pub fn search<'p, 'a>(&self, v: &'p Json<'a>) -> Result<Found<'p, 'a>, String> {
        match &self.shape {
            Shape::Path(p) => Ok(walk(v, p)),
            Shape::First { list, key, value, field } => {
                // The first item with the key that has the field (a projection leaves out
                // what it finds nothing in).
                let found = match walk(v, list) {
                    Found::One(Json::Array(items)) => items
                        .iter()
                        .filter(|it| it.get(key).and_then(Json::as_str) == Some(value.as_str()))
                        .find_map(|it| it.get(field).filter(|f| !f.is_null())),
                    _ => None,
                };
                Ok(found.map_or(Found::Nothing, Found::One))
            }
            Shape::Other => {
                let answer = self.compiled.search(v).map_err(|e| e.to_string())?;
                let value = serde_json::to_value(&*answer).map_err(|e| e.to_string())?;
                Ok(Found::Made(Json::from_value(value)))
            }
        }
    }
}

/// Reads the value at an expression of a page (paging cursors, next URLs, page counts, error
/// fields), or `None` when it finds nothing (or does not compile).
pub fn lookup<'p, 'a>(page: &'p Json<'a>, expr: &str) -> Option<Cow<'p, Json<'a>>> {
    let found = match path(expr) {
        Some(p) => walk(page, &p),
        None => Expr::new("", expr).ok()?.search(page).ok()?,
    };
    let v = match found {
        Found::Nothing => return None,
        Found::One(v) => Cow::Borrowed(v),
        other => Cow::Owned(other.value().into_owned()),
    };
    (!v.is_null()).then_some(v)
}

/// Follows a path; after a `[]`, over each item (those it finds nothing in left out).
fn walk<'p, 'a>(v: &'p Json<'a>, path: &[Step]) -> Found<'p, 'a> {
    let mut one = v;
    let mut many: Option<Vec<&'p Json<'a>>> = None;
    for step in path {
        if let Some(list) = many.as_mut() {
            match step {
                Step::Field(f) => list.retain_mut(|it| match it.get(f) {
                    Some(x) if !x.is_null() => {
                        *it = x;
                        true
                    }
                    _ => false,
                }),
                Step::Flatten => *list = flatten(list),
                // Not a walked shape (see `path`).
                Step::Index(_) => return Found::Nothing,
            }
            continue;
        }
        let next = match (step, one) {
            (Step::Field(f), _) => one.get(f),
            (Step::Index(n), Json::Array(a)) => a.get(*n),
            (Step::Flatten, Json::Array(a)) => {
                many = Some(flatten(&a.iter().collect::<Vec<_>>()));
                continue;
            }
            _ => None,
        };
        match next {
            Some(n) => one = n,
            None => return Found::Nothing,
        }
    }
    match many {
        Some(list) => Found::Many(list),
        None => Found::One(one),
    }
}

/// A list with the lists in it flattened one level.
fn flatten<'p, 'a>(list: &[&'p Json<'a>]) -> Vec<&'p Json<'a>> {
    let mut out = Vec::with_capacity(list.len());
    for it in list {
        match it {
            Json::Array(inner) => out.extend(inner.iter()),
            one => out.push(*one),
        }
    }
    out
}

/// The steps of a path of fields, indexes and `[]`, or `None` for anything else.
fn path(expr: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = expr.trim();
    loop {
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"')?;
            if r[..end].contains('\\') {
                return None;
            }
            steps.push(Step::Field(r[..end].to_string()));
            rest = &r[end + 1..];
        } else if !rest.starts_with('[') {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            steps.push(Step::Field(name.to_string()));
            rest = &rest[end..];
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            steps.push(if inner.is_empty() { Step::Flatten } else { Step::Index(inner.parse().ok()?) });
            rest = &r[end + 1..];
        }
        if rest.is_empty() {
            // An index after a projection picks from each item in JMESPath, not from the
            // list: left to the interpreter.
            let flat = steps.iter().position(|s| *s == Step::Flatten);
            if flat.is_some_and(|f| steps[f..].iter().any(|s| matches!(s, Step::Index(_)))) {
                return None;
            }
            return (!steps.is_empty()).then_some(steps);
        }
        rest = rest.strip_prefix('.')?;
    }
}

/// `list[?key=='value'].field | [0]` taken apart, or `None`.
fn first_match(expr: &str) -> Option<(Vec<Step>, String, String, String)> {
    let (head, tail) = expr.trim().split_once("[?")?;
    let (cond, after) = tail.split_once(']')?;
    let (key, value) = cond.split_once("==")?;
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    let after = after.trim().strip_prefix('.')?;
    let field = after.strip_suffix("| [0]").or_else(|| after.strip_suffix("|[0]"))?;
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let (key, field) = (key.trim(), field.trim());
    if !plain(key) || !plain(field) || value.contains(['\'', '\\']) {
        return None;
    }
    let list = path(head)?;
    if list.contains(&Step::Flatten) {
        return None;
    }
    Some((list, key.to_string(), value.to_string(), field.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expression gives what the interpreter gives, on the answers the presets read.
    #[test]
    fn walked_shapes_answer_as_the_interpreter_does() {
        let body = br#"{"data":[{"campaign_id":"238","n":12345678901234567,"spend":"53.5",
            "actions":[{"action_type":"onsite_conversion.lead_grouped","value":"9"},{"action_type":"lead","value":"12"}],
            "m":{"k ey":[1,2,[3,4]]}},{"campaign_id":"239","actions":[]}],
            "batches":[{"results":[{"id":1},{"id":2}]},{"results":[]},{"other":1},{"results":[{"id":3}]}],
            "nested":[[{"a":1}],[{"a":2},{"b":3}]],"deep":[{"x":[[1],[2]]},{"x":[3]}],"esc":"a\"b"}"#;
        let page = parse(body).unwrap();
        let reference = jmespath::Variable::from_json(std::str::from_utf8(body).unwrap()).unwrap();
        for e in [
            "data",
            "data[0].campaign_id",
            "data[0].n",
            "data[0].m.\"k ey\"[2][1]",
            "data[1].missing.deeper",
            "data[0].actions[?action_type=='lead'].value | [0]",
            "data[1].actions[?action_type=='lead'].value | [0]",
            "batches[].results[]",
            "batches[].results",
            "data[].campaign_id",
            "nested[]",
            "nested[].a",
            "deep[].x[]",
            "esc",
            "data[?campaign_id=='239'].campaign_id",
            "length(data)",
        ] {
            let ours = Expr::new("x", e).unwrap();
            let found = ours.search(&page).unwrap();
            let ours = serde_json::to_value(&*found.value()).unwrap();
            let theirs = jmespath::compile(e).unwrap().search(reference.clone()).unwrap();
            let theirs = serde_json::to_value(&*theirs).unwrap();
            // The interpreter keeps numbers as f64.
            let ours = serde_json::to_value(serde_json::from_value::<jmespath::Variable>(ours).unwrap()).unwrap();
            assert_eq!(ours, theirs, "{e}");
        }
        assert!(matches!(Expr::new("x", "batches[].results[]").unwrap().shape, Shape::Path(_)));
        assert!(matches!(
            Expr::new("x", "data[0].actions[?action_type=='lead'].value | [0]").unwrap().shape,
            Shape::First { .. }
        ));
        assert!(matches!(Expr::new("x", "data[].actions[0]").unwrap().shape, Shape::Other));
        assert_eq!(lookup(&page, "data[0].n").unwrap().scalar_text().unwrap(), "12345678901234567", "ids stay exact");
    }

    /// A page built of what its expressions read answers them as the whole page does.
    #[test]
    fn a_page_built_as_wanted_answers_as_the_whole() {
        let body = br#"{"data":[{"campaign_id":"238","date_start":"2026-06-01","skip":{"big":[1,2,3]},
            "actions":[{"action_type":"lead","value":"12","x":1},{"action_type":"other","value":"1"},{"action_type":"purchase","value":"3"}],
            "m":{"k":[{"v":1},{"v":2}]}},{"campaign_id":"239"}],"paging":{"next":"http://n"},"error":null}"#;
        let exprs = [
            "campaign_id",
            "date_start",
            "actions[?action_type=='lead'].value | [0]",
            "actions[?action_type=='purchase'].value | [0]",
            "actions[?action_type=='other'].value | [0]",
            "m.k[1].v",
        ];
        let compiled: Vec<Expr> = exprs.iter().map(|e| Expr::new("x", e).unwrap()).collect();
        let row = compiled.iter().map(Expr::want).reduce(Want::merge).unwrap();
        let rows = Expr::new("rows", "data").unwrap();
        let want = Want::page(&rows, row.clone());
        assert_ne!(want, Want::All);
        let (whole, built) = (parse(body).unwrap(), want.parse(body).unwrap());
        assert!(built.get("data").unwrap().get("skip").is_none(), "what nobody reads is not built");
        assert_eq!(lookup(&built, "paging.next").unwrap().as_str(), Some("http://n"), "the rest of the page is whole");
        fn items<'a>(rows: &Expr, p: &Json<'a>) -> Vec<Json<'a>> {
            rows.search(p).unwrap().items().unwrap().into_iter().cloned().collect()
        }
        let (a, b) = (items(&rows, &whole), items(&rows, &built));
        assert_eq!(a.len(), b.len());
        for (ra, rb) in a.iter().zip(&b) {
            for e in &compiled {
                assert_eq!(e.search(ra).unwrap().value(), e.search(rb).unwrap().value(), "{}", e.text);
            }
        }
        // A list read otherwise too keeps all its items.
        let both = Expr::new("x", "actions[1].value").unwrap().want().merge(row);
        let built = Want::page(&rows, both).parse(body).unwrap();
        let first = &items(&rows, &built)[0];
        assert_eq!(Expr::new("x", "actions[1].value").unwrap().search(first).unwrap().value().as_str(), Some("1"));
        assert_eq!(Want::page(&Expr::new("r", "length(data)").unwrap(), Want::All), Want::All);
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let body = br#"{"plain":"abc","escaped":"a\nb"}"#;
        let page = parse(body).unwrap();
        assert!(matches!(page.get("plain"), Some(Json::Str(Cow::Borrowed("abc")))));
        assert!(matches!(page.get("escaped"), Some(Json::Str(Cow::Owned(_)))));
        assert_eq!(parse(b"\xff").unwrap_err(), "not UTF-8 text");
        assert!(parse(b"{").unwrap_err().starts_with("not JSON"));
    }
}
