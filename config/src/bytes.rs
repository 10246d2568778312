//! Sizes in bytes as people write them: `536870912`, `"512 MiB"`, `"4 GiB"`.
//!
//! Memory limits (`[limits]`) are easier to read and harder to get wrong with a unit, so a
//! [`ByteSize`] takes either a whole number of bytes or a string of a whole number and one
//! binary unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`; the space is optional). Decimal units (`MB`,
//! `GB`) are refused rather than guessed at, since they mean 10⁶ to some people and 2²⁰ to
//! others.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A number of bytes (see the module docs for the accepted spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const UNITS: [(&str, u64); 5] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// What a size string may look like, for error messages.
pub const BYTE_SIZE_HINT: &str =
    "a whole number of bytes or a string with a binary unit, e.g. `\"512 MiB\"` or `\"4 GiB\"`";

impl ByteSize {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `"4 GiB"`, `"512MiB"`, `"1024"`; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits_end);
        if number.is_empty() {
            return Err(format!("{text:?} does not start with a whole number"));
        }
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{number} is too large"))?;
        let unit = unit.trim();
        let scale = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(unit))
                .map(|&(_, scale)| scale)
                .ok_or_else(|| {
                    format!("unknown unit {unit:?}: use B, KiB, MiB, GiB or TiB (binary units)")
                })?
        };
        number
            .checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is more bytes than fit in 64 bits"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the size exactly: `4 GiB`, `1536 MiB`, `100 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, scale) = UNITS
            .iter()
            .find(|(_, scale)| self.0 != 0 && self.0 % scale == 0)
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{} {name}", self.0 / scale)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(BYTE_SIZE_HINT)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_binary_units() {
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("4 GiB"), Ok(ByteSize(4 << 30)));
        assert_eq!(ByteSize::parse("512MiB"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse(" 3 kib "), Ok(ByteSize(3 << 10)));
        assert_eq!(ByteSize::parse("7 B"), Ok(ByteSize(7)));
        assert_eq!(ByteSize::parse("1 TiB"), Ok(ByteSize(1 << 40)));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        assert!(ByteSize::parse("4 GB")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(ByteSize::parse("GiB").unwrap_err().contains("whole number"));
        assert!(ByteSize::parse("1.5 GiB")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(ByteSize::parse("99999999999 TiB")
            .unwrap_err()
            .contains("64 bits"));
        assert!(ByteSize::parse("").is_err());
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(ByteSize(4 << 30).to_string(), "4 GiB");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536 MiB");
        assert_eq!(ByteSize(100).to_string(), "100 B");
        assert_eq!(ByteSize(0).to_string(), "0 B");
    }
}
