//! Human-readable durations for configuration: `"500ms"`, `"30s"`, `"1m"`, `"1h30m"`, `"2d"`.
//!
//! Used with `#[serde(with = "crate::duration")]` so function options read like the
//! Inngest SDK's (`period: "1m"`), and accepted as plain integers of milliseconds too.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses `"1h30m"`, `"250ms"`, `"45s"`, `"2d"`, `"1w"`; a bare number means milliseconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration '{text}': expected a number before the unit"
            ));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration '{text}': number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(format!(
                    "invalid duration '{text}': missing unit (ms, s, m, h, d, w)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration '{text}': unknown unit '{other}' (use ms, s, m, h, d, w)"
                ))
            }
        };
        total_ms = total_ms
            .checked_add(n.saturating_mul(factor))
            .ok_or_else(|| format!("invalid duration '{text}': too large"))?;
    }
    u64::try_from(total_ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("invalid duration '{text}': too large"))
}

/// Formats a duration in the largest exact units: `90s` → `"1m30s"`, `1500ms` → `"1s500ms"`.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0ms".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Serialises as [`format`] text.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// Deserialises from [`parse`] text or an integer of milliseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Millis(u64),
        Text(String),
    }
    match Repr::deserialize(d)? {
        Repr::Millis(ms) => Ok(Duration::from_millis(ms)),
        Repr::Text(t) => parse(&t).map_err(serde::de::Error::custom),
    }
}

/// The same for `Option<Duration>`.
pub mod option {
    use super::*;

    /// Serialises `Some` as text, `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserialises null, text or milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Millis(u64),
            Text(String),
        }
        match Option::<Repr>::deserialize(d)? {
            None => Ok(None),
            Some(Repr::Millis(ms)) => Ok(Some(Duration::from_millis(ms))),
            Some(Repr::Text(t)) => parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_units() {
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1500").unwrap(), Duration::from_millis(1500));
        assert_eq!(format(Duration::from_millis(90_500)), "1m30s500ms");
        assert_eq!(format(Duration::ZERO), "0ms");
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("5 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse("m").unwrap_err().contains("expected a number"));
        assert!(parse("10").is_ok());
        assert!(parse("10x").unwrap_err().contains("'x'"));
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            proptest::prop_assert_eq!(parse(&format(d)).unwrap(), d);
        }

        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = parse(&s);
        }
    }
}
