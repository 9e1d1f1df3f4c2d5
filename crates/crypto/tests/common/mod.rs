//! Test helpers: a tiny JSON reader for the golden fixtures (the crate has no
//! serde dependency) and a few shared utilities.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

/// The subset of JSON the fixtures use: objects and strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Str(String),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(key).unwrap_or_else(|| panic!("missing key {key}")),
            Json::Str(_) => panic!("not an object"),
        }
    }
    pub fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Json::Str(s) => s,
            Json::Obj(_) => panic!("{key} is not a string"),
        }
    }
    pub fn hex(&self, key: &str) -> Vec<u8> {
        hex::decode(self.str(key)).unwrap()
    }
    pub fn string_map(&self, key: &str) -> BTreeMap<String, String> {
        match self.get(key) {
            Json::Obj(m) => m
                .iter()
                .map(|(k, v)| match v {
                    Json::Str(s) => (k.clone(), s.clone()),
                    Json::Obj(_) => panic!("nested object in {key}"),
                })
                .collect(),
            Json::Str(_) => panic!("{key} is not an object"),
        }
    }
}

pub fn load_fixture(name: &str) -> Json {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_json(&text)
}

pub fn parse_json(text: &str) -> Json {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let v = p.value();
    p.ws();
    assert_eq!(p.pos, p.chars.len(), "trailing data in JSON");
    v
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }
    fn next(&mut self) -> char {
        let c = self.chars[self.pos];
        self.pos += 1;
        c
    }
    fn expect(&mut self, c: char) {
        self.ws();
        assert_eq!(self.next(), c, "JSON: expected {c:?} at {}", self.pos);
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.chars[self.pos] {
            '{' => self.object(),
            '"' => Json::Str(self.string()),
            c => panic!("JSON: unsupported value starting with {c:?}"),
        }
    }
    fn object(&mut self) -> Json {
        self.expect('{');
        let mut m = BTreeMap::new();
        self.ws();
        if self.chars[self.pos] == '}' {
            self.pos += 1;
            return Json::Obj(m);
        }
        loop {
            self.ws();
            let k = self.string();
            self.expect(':');
            let v = self.value();
            assert!(m.insert(k, v).is_none(), "JSON: duplicate key");
            self.ws();
            match self.next() {
                ',' => continue,
                '}' => return Json::Obj(m),
                c => panic!("JSON: unexpected {c:?}"),
            }
        }
    }
    fn string(&mut self) -> String {
        self.expect('"');
        let mut s = String::new();
        loop {
            match self.next() {
                '"' => return s,
                '\\' => match self.next() {
                    '"' => s.push('"'),
                    '\\' => s.push('\\'),
                    '/' => s.push('/'),
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'u' => {
                        let hex: String = (0..4).map(|_| self.next()).collect();
                        let cp = u32::from_str_radix(&hex, 16).unwrap();
                        s.push(char::from_u32(cp).expect("BMP scalar only"));
                    }
                    c => panic!("JSON: bad escape {c:?}"),
                },
                c => s.push(c),
            }
        }
    }
}

/// Builds a context map from literal pairs.
pub fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
