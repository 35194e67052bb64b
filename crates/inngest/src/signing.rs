//! Signing as the Inngest SDK checks it: requests to an app carry
//! `X-Inngest-Signature: t=<unix seconds>&s=<hex HMAC-SHA256>` over the RFC 8785
//! (JCS) canonical JSON body followed by `t`, keyed with the signing key's hex text
//! (prefix `signkey-<env>-` removed, not hex-decoded); the app signs its answers the
//! same way over the exact body; API calls from the app carry
//! `Bearer signkey-<env>-<hex SHA-256 of the hex-decoded key>`.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How far a signature's time may be from now, either way.
pub const MAX_SKEW_SECS: i64 = 300;

/// A signing key (`signkey-<env>-<hex>`).
#[derive(Clone)]
pub struct SigningKey {
    full: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

fn prefix_len(key: &str) -> usize {
    // `signkey-` then an environment word then `-`.
    key.strip_prefix("signkey-")
        .and_then(|rest| rest.find('-').map(|i| "signkey-".len() + i + 1))
        .unwrap_or(0)
}

impl SigningKey {
    /// A key; its hex part must be even-length hex.
    pub fn new(key: &str) -> Result<Self, String> {
        let key = key.trim();
        let hexpart = &key[prefix_len(key)..];
        if hexpart.is_empty() || hex::decode(hexpart).is_err() {
            return Err("the Inngest signing key must be `signkey-<env>-<even-length hex>`".into());
        }
        Ok(SigningKey {
            full: key.to_string(),
        })
    }

    fn secret(&self) -> &str {
        &self.full[prefix_len(&self.full)..]
    }

    fn mac(&self, body: &[u8], t: i64) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.secret().as_bytes()).expect("HMAC takes any key length");
        mac.update(body);
        mac.update(t.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The signature header for `body` (already canonical) at time `t`.
    pub fn sign(&self, body: &[u8], t: i64) -> String {
        format!("t={t}&s={}", self.mac(body, t))
    }

    /// Checks a signature header over `body` at `now`.
    pub fn verify(&self, header: &str, body: &[u8], now: i64) -> Result<(), String> {
        let mut t = None;
        let mut s = None;
        for part in header.split('&') {
            match part.split_once('=') {
                Some(("t", v)) => t = v.parse::<i64>().ok(),
                Some(("s", v)) => s = Some(v.to_string()),
                _ => {}
            }
        }
        let (Some(t), Some(s)) = (t, s) else {
            return Err("malformed signature header".into());
        };
        if (now - t).abs() > MAX_SKEW_SECS {
            return Err("the signature has expired".into());
        }
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.secret().as_bytes()).expect("HMAC takes any key length");
        mac.update(body);
        mac.update(t.to_string().as_bytes());
        match hex::decode(&s) {
            // verify_slice compares in constant time.
            Ok(bytes) if mac.verify_slice(&bytes).is_ok() => Ok(()),
            _ => Err("the signature does not match".into()),
        }
    }

    /// The bearer token an app sends with this key (and the raw key is accepted too).
    pub fn bearer_matches(&self, header: &str) -> bool {
        let token = header.trim().strip_prefix("Bearer ").unwrap_or("").trim();
        let prefix = &self.full[..prefix_len(&self.full)];
        let hashed = hex::decode(self.secret())
            .map(|raw| format!("{prefix}{}", hex::encode(Sha256::digest(raw))))
            .unwrap_or_default();
        !token.is_empty() && (token == hashed || token == self.full)
    }
}

/// RFC 8785 canonical JSON: object keys sorted by UTF-16 code units, no spaces,
/// numbers as ECMAScript prints them.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::Number(n) => out.push_str(&js_number(n)),
        other => out.push_str(&other.to_string()),
    }
}

fn js_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{}", f as i128);
    }
    let s = format!("{f:e}");
    // ECMAScript prints 1.5e-7 as "1.5e-7" and 1e21 as "1e+21"; Rust as "1.5e-7"/"1e21".
    if (1e-6..1e21).contains(&f.abs()) {
        return f.to_string();
    }
    match s.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "signkey-test-7468697320697320612074657374206b6579";

    #[test]
    fn canonical_json_sorts_keys_and_prints_numbers_as_javascript() {
        let v = json!({"b": [1, 2.0, {"z": 1, "a": null}], "a": "x\u{e9}", "c": 0.5, "d": 1e21});
        assert_eq!(
            canonical(&v),
            r#"{"a":"xé","b":[1,2,{"a":null,"z":1}],"c":0.5,"d":1e+21}"#
        );
    }

    #[test]
    fn signatures_verify_and_expire() {
        let k = SigningKey::new(KEY).unwrap();
        let body = br#"{"a":1}"#;
        let h = k.sign(body, 1_000);
        assert!(k.verify(&h, body, 1_100).is_ok());
        assert!(k.verify(&h, br#"{"a":2}"#, 1_100).is_err());
        assert!(k.verify(&h, body, 1_000 + 301).unwrap_err().contains("expired"));
        assert!(k.verify("t=1000", body, 1_000).is_err());
        let other = SigningKey::new("signkey-test-00ff").unwrap();
        assert!(other.verify(&h, body, 1_000).is_err());
        assert!(SigningKey::new("signkey-test-xyz").is_err());
    }

    #[test]
    fn the_bearer_is_the_hash_of_the_decoded_key() {
        let k = SigningKey::new(KEY).unwrap();
        let raw = hex::decode("7468697320697320612074657374206b6579").unwrap();
        let expected = format!("Bearer signkey-test-{}", hex::encode(Sha256::digest(raw)));
        assert!(k.bearer_matches(&expected));
        assert!(k.bearer_matches(&format!("Bearer {KEY}")));
        assert!(!k.bearer_matches("Bearer undefined"));
        assert!(!k.bearer_matches(""));
    }
}
