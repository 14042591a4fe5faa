//! The bit-width grammar every command shares: one width (`w4a4`, `w8a4`, `4`), a range of
//! uniform widths (`2..8`: w2a2 to w8a8, both ends included) or a set (`w4a4,w8a8`, `4,6,8`).
//! A command that takes one width refuses a range or a set, and the other way round, with
//! an error naming the flag.

use crate::units::Bits;
use crate::workload::BitWidths;
use std::fmt;

/// What a `--bits` value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BitsSpec {
    /// One width: `w4a4`, `w8a4`, or one number (`4` = w4a4).
    One(BitWidths),
    /// Every uniform width `w{b}a{b}` for b from `lo` to `hi`, both included: `2..8`.
    Range { lo: Bits, hi: Bits },
    /// Two or more distinct widths, comma-separated, in the order given: `w4a4,w8a8`, `4,6,8`.
    Set(Vec<BitWidths>),
}

const FORMS: &str = "a width (w4a4, or 4 for w4a4), a range LO..HI (2..8) or a set (w4a4,w8a8 or 4,6,8), widths in 1..=32";

fn number(whole: &str, t: &str) -> Result<Bits, String> {
    let t = t.trim();
    if t.is_empty() {
        return Err(format!("'{whole}': a width is missing; expected {FORMS}"));
    }
    if !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "'{whole}': '{t}' is not a whole number; expected {FORMS}"
        ));
    }
    let v: i64 = t.parse().unwrap_or(i64::MAX);
    Bits::try_new(v).map_err(|_| format!("'{whole}': width {t} is outside 1..=32"))
}

fn width(whole: &str, t: &str) -> Result<BitWidths, String> {
    let t = t.trim();
    match t.strip_prefix('w') {
        Some(rest) => {
            let (w, a) = rest.split_once('a').ok_or_else(|| {
                format!("'{whole}': '{t}' is not a width; expected wXaY such as w4a4")
            })?;
            Ok(BitWidths {
                w: number(whole, w)?,
                a: number(whole, a)?,
            })
        }
        None => {
            let b = number(whole, t)?;
            Ok(BitWidths { w: b, a: b })
        }
    }
}

fn uniform(b: Bits) -> BitWidths {
    BitWidths { w: b, a: b }
}

impl BitsSpec {
    /// Parses one of the three forms; the error quotes the text and says what was expected
    /// (the caller adds the flag, or use [`BitsSpec::parse_flag`]).
    pub fn parse(s: &str) -> Result<BitsSpec, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err(format!("'{s}': empty; expected {FORMS}"));
        }
        if let Some((lo, hi)) = t.split_once("..") {
            let hi = hi.strip_prefix('=').unwrap_or(hi);
            let (lo, hi) = (number(s, lo)?, number(s, hi)?);
            if lo > hi {
                return Err(format!(
                    "'{s}': the range is reversed (empty); write the low end first: {}..{}",
                    hi.get(),
                    lo.get()
                ));
            }
            return Ok(BitsSpec::Range { lo, hi });
        }
        if t.contains(',') {
            let mut set: Vec<BitWidths> = Vec::new();
            for e in t.split(',') {
                let b = width(s, e)?;
                if set.contains(&b) {
                    return Err(format!("'{s}': {b} appears twice in the set"));
                }
                set.push(b);
            }
            return Ok(BitsSpec::Set(set));
        }
        width(s, t).map(BitsSpec::One)
    }

    /// [`BitsSpec::parse`] with the flag in the error: `--bits 'w0a4': ...`.
    pub fn parse_flag(flag: &str, s: &str) -> Result<BitsSpec, String> {
        BitsSpec::parse(s).map_err(|e| format!("{flag} {e}"))
    }

    /// What kind of value this is, for errors: "a width", "a range", "a set".
    pub fn kind(&self) -> &'static str {
        match self {
            BitsSpec::One(_) => "a width",
            BitsSpec::Range { .. } => "a range",
            BitsSpec::Set(_) => "a set",
        }
    }

    /// The one width of a command that takes one; a range or a set is an error naming `flag`.
    pub fn one(&self, flag: &str) -> Result<BitWidths, String> {
        match self {
            BitsSpec::One(b) => Ok(*b),
            _ => Err(format!(
                "{flag} takes one width here, e.g. w4a4; got {} {self}",
                self.kind()
            )),
        }
    }

    /// Every width, in order (a range ascending; a set as given; one width alone).
    pub fn widths(&self) -> Vec<BitWidths> {
        match self {
            BitsSpec::One(b) => vec![*b],
            BitsSpec::Range { lo, hi } => (lo.get()..=hi.get())
                .filter_map(|b| Bits::try_new(b.into()).ok().map(uniform))
                .collect(),
            BitsSpec::Set(v) => v.clone(),
        }
    }

    /// The widths b of a command that evaluates uniform widths `w{b}a{b}`, ascending; a width
    /// whose weights and activations differ is an error naming `flag`.
    pub fn uniform(&self, flag: &str) -> Result<Vec<u32>, String> {
        let mut v = Vec::new();
        for b in self.widths() {
            if b.w != b.a {
                return Err(format!(
                    "{flag} '{self}': this command evaluates uniform widths wBaB (the same for weights and activations); {b} is not one"
                ));
            }
            v.push(b.w.get());
        }
        v.sort_unstable();
        Ok(v)
    }

    /// The lowest and highest width of a command whose widths must be consecutive (every
    /// width from one to the other); a set with gaps is an error naming `flag`.
    pub fn consecutive(&self, flag: &str) -> Result<(u32, u32), String> {
        let v = self.uniform(flag)?;
        let (lo, hi) = (v[0], v[v.len() - 1]);
        if (hi - lo) as usize + 1 != v.len() {
            return Err(format!(
                "{flag} '{self}': this command takes consecutive widths; write them as a range, e.g. {lo}..{hi}, or list every width between"
            ));
        }
        Ok((lo, hi))
    }
}

impl fmt::Display for BitsSpec {
    /// The text [`BitsSpec::parse`] reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitsSpec::One(b) => write!(f, "{b}"),
            BitsSpec::Range { lo, hi } => write!(f, "{}..{}", lo.get(), hi.get()),
            BitsSpec::Set(v) => {
                let names: Vec<String> = v.iter().map(|b| b.to_string()).collect();
                write!(f, "{}", names.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bw(w: u32, a: u32) -> BitWidths {
        BitWidths {
            w: Bits::try_new(w.into()).unwrap(),
            a: Bits::try_new(a.into()).unwrap(),
        }
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(BitsSpec::parse("w4a4"), Ok(BitsSpec::One(bw(4, 4))));
        assert_eq!(BitsSpec::parse("w8a4"), Ok(BitsSpec::One(bw(8, 4))));
        assert_eq!(BitsSpec::parse("6"), Ok(BitsSpec::One(bw(6, 6))));
        let r = BitsSpec::parse("2..8").unwrap();
        assert_eq!(r.widths().len(), 7);
        assert_eq!(r.uniform("--bits"), Ok(vec![2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(BitsSpec::parse("2..=8"), Ok(r));
        assert_eq!(
            BitsSpec::parse("w4a4,w8a8"),
            Ok(BitsSpec::Set(vec![bw(4, 4), bw(8, 8)]))
        );
        assert_eq!(
            BitsSpec::parse("8,4, 6").unwrap().uniform("--bits"),
            Ok(vec![4, 6, 8])
        );
        assert_eq!(
            BitsSpec::parse("5..5").unwrap().uniform("--bits"),
            Ok(vec![5])
        );
    }

    #[test]
    fn bad_text_is_named() {
        for (s, says) in [
            ("", "empty"),
            ("  ", "empty"),
            ("w0a4", "width 0 is outside 1..=32"),
            ("w99a4", "width 99 is outside 1..=32"),
            ("w4a99999999999999999999999", "outside 1..=32"),
            ("8..2", "reversed"),
            ("4,,6", "a width is missing"),
            ("4,", "a width is missing"),
            ("2..", "a width is missing"),
            ("..8", "a width is missing"),
            ("w4", "not a width"),
            ("x4a4", "'x4a4' is not a whole number"),
            ("-3", "'-3' is not a whole number"),
            ("4,4", "w4a4 appears twice"),
            ("2..4..6", "'4..6' is not a whole number"),
        ] {
            let e = BitsSpec::parse_flag("--bits", s).unwrap_err();
            assert!(e.starts_with(&format!("--bits '{s}': ")), "{s}: {e}");
            assert!(e.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn one_width_refuses_a_range_or_a_set() {
        let e = BitsSpec::parse("2..8").unwrap().one("--bits").unwrap_err();
        assert_eq!(
            e,
            "--bits takes one width here, e.g. w4a4; got a range 2..8"
        );
        let e = BitsSpec::parse("4,6").unwrap().one("--bits").unwrap_err();
        assert!(e.contains("got a set w4a4,w6a6"), "{e}");
        assert_eq!(BitsSpec::parse("w4a8").unwrap().one("--bits"), Ok(bw(4, 8)));
    }

    #[test]
    fn uniform_and_consecutive_widths() {
        let e = BitsSpec::parse("w4a8,w8a8")
            .unwrap()
            .uniform("--bits")
            .unwrap_err();
        assert!(e.contains("w4a8 is not one"), "{e}");
        assert_eq!(
            BitsSpec::parse("4,5,6").unwrap().consecutive("--bits"),
            Ok((4, 6))
        );
        assert_eq!(
            BitsSpec::parse("3..7").unwrap().consecutive("--bits"),
            Ok((3, 7))
        );
        let e = BitsSpec::parse("4,6,8")
            .unwrap()
            .consecutive("--bits")
            .unwrap_err();
        assert!(e.contains("4..8"), "{e}");
    }

    fn spec() -> impl Strategy<Value = BitsSpec> {
        let w = (1u32..=32, 1u32..=32).prop_map(|(w, a)| bw(w, a));
        prop_oneof![
            w.clone().prop_map(BitsSpec::One),
            (1u32..=32, 1u32..=32).prop_map(|(x, y)| BitsSpec::Range {
                lo: Bits::try_new(x.min(y).into()).unwrap(),
                hi: Bits::try_new(x.max(y).into()).unwrap(),
            }),
            proptest::collection::vec(w, 2..6).prop_filter_map("distinct", |v| {
                let distinct = v.iter().enumerate().all(|(i, b)| !v[..i].contains(b));
                distinct.then_some(BitsSpec::Set(v))
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_accepted_form_round_trips(s in spec()) {
            prop_assert_eq!(BitsSpec::parse(&s.to_string()), Ok(s));
        }

        #[test]
        fn no_text_panics(t in "[wa0-9.,= ]{0,12}") {
            let _ = BitsSpec::parse(&t);
        }
    }
}
