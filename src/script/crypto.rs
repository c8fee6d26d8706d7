//! `k6/crypto` and `k6/encoding`: digests, HMAC, random bytes and base64, as pure functions
//! over byte strings. Lua strings carry binary data, so k6's ArrayBuffer results are
//! strings of raw bytes here ("binary" output encoding).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use md5::Digest;

/// A digest algorithm by k6's name.
#[derive(Clone, Copy)]
enum Algorithm {
    Md5,
    /// The digest, and its HMAC when ring has one.
    Ring(
        &'static ring::digest::Algorithm,
        Option<ring::hmac::Algorithm>,
    ),
}

fn algorithm(name: &str) -> Result<Algorithm, String> {
    use ring::{digest, hmac};
    Ok(match name.to_ascii_lowercase().as_str() {
        "md5" => Algorithm::Md5,
        "sha1" => Algorithm::Ring(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Some(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        ),
        "sha256" => Algorithm::Ring(&digest::SHA256, Some(hmac::HMAC_SHA256)),
        "sha384" => Algorithm::Ring(&digest::SHA384, Some(hmac::HMAC_SHA384)),
        "sha512" => Algorithm::Ring(&digest::SHA512, Some(hmac::HMAC_SHA512)),
        "sha512_256" => Algorithm::Ring(&digest::SHA512_256, None),
        other => {
            return Err(format!(
            "unsupported hash algorithm {other:?} (md5, sha1, sha256, sha384, sha512, sha512_256)"
        ))
        }
    })
}

/// `crypto.<algorithm>(data, encoding)` and `hasher.digest(encoding)`.
pub fn hash(name: &str, data: &[u8], encoding: &str) -> Result<Vec<u8>, String> {
    let raw = match algorithm(name)? {
        Algorithm::Md5 => md5::Md5::digest(data).to_vec(),
        Algorithm::Ring(alg, _) => ring::digest::digest(alg, data).as_ref().to_vec(),
    };
    encode_output(&raw, encoding)
}

/// `crypto.hmac(algorithm, secret, data, encoding)`.
pub fn hmac(name: &str, key: &[u8], data: &[u8], encoding: &str) -> Result<Vec<u8>, String> {
    let raw = match algorithm(name)? {
        Algorithm::Md5 => hmac_md5(key, data),
        Algorithm::Ring(_, None) => {
            return Err(format!(
                "hmac: {name} is not supported (md5, sha1, sha256, sha384, sha512)"
            ))
        }
        Algorithm::Ring(_, Some(alg)) => {
            let key = ring::hmac::Key::new(alg, key);
            ring::hmac::sign(&key, data).as_ref().to_vec()
        }
    };
    encode_output(&raw, encoding)
}

/// HMAC (RFC 2104) over MD5, block size 64.
fn hmac_md5(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..16].copy_from_slice(&md5::Md5::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = md5::Md5::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    md5::Md5::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// k6's output encodings: hex, base64, base64url, base64rawurl, binary (raw bytes).
fn encode_output(raw: &[u8], encoding: &str) -> Result<Vec<u8>, String> {
    Ok(match encoding {
        "" | "hex" => raw.iter().flat_map(|b| hex_pair(*b)).collect(),
        "base64" => STANDARD.encode(raw).into_bytes(),
        "base64url" => URL_SAFE.encode(raw).into_bytes(),
        "base64rawurl" => URL_SAFE_NO_PAD.encode(raw).into_bytes(),
        "binary" => raw.to_vec(),
        other => {
            return Err(format!(
            "unsupported output encoding {other:?} (hex, base64, base64url, base64rawurl, binary)"
        ))
        }
    })
}

fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]
}

fn b64_engine(variant: &str) -> Result<&'static base64::engine::GeneralPurpose, String> {
    Ok(match variant {
        "" | "std" => &STANDARD,
        "rawstd" => &STANDARD_NO_PAD,
        "url" => &URL_SAFE,
        "rawurl" => &URL_SAFE_NO_PAD,
        other => {
            return Err(format!(
                "unsupported base64 encoding {other:?} (std, rawstd, url, rawurl)"
            ))
        }
    })
}

/// `encoding.b64encode(data, variant)`.
pub fn b64encode(data: &[u8], variant: &str) -> Result<String, String> {
    Ok(b64_engine(variant)?.encode(data))
}

/// `encoding.b64decode(text, variant)`.
pub fn b64decode(text: &[u8], variant: &str) -> Result<Vec<u8>, String> {
    b64_engine(variant)?
        .decode(text)
        .map_err(|e| format!("b64decode: {e}"))
}

/// The `E.*` primitives behind the prelude's `k6/crypto` and `k6/encoding`.
pub fn register(lua: &mlua::Lua, e: &mlua::Table) -> mlua::Result<()> {
    use super::lua_err;
    use mlua::LuaString;
    let text = |s: &Option<LuaString>, default: &str| {
        s.as_ref()
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| default.to_string())
    };
    e.set(
        "hash",
        lua.create_function(
            move |lua, (alg, data, enc): (LuaString, LuaString, Option<LuaString>)| {
                let out = hash(&alg.to_string_lossy(), &data.as_bytes(), &text(&enc, "hex"))
                    .map_err(|m| lua_err(lua, m))?;
                lua.create_string(out)
            },
        )?,
    )?;
    e.set(
        "hmac",
        lua.create_function(
            move |lua,
                  (alg, key, data, enc): (
                LuaString,
                LuaString,
                LuaString,
                Option<LuaString>,
            )| {
                let out = hmac(
                    &alg.to_string_lossy(),
                    &key.as_bytes(),
                    &data.as_bytes(),
                    &text(&enc, "hex"),
                )
                .map_err(|m| lua_err(lua, m))?;
                lua.create_string(out)
            },
        )?,
    )?;
    e.set(
        "b64encode",
        lua.create_function(
            move |lua, (data, variant): (LuaString, Option<LuaString>)| {
                b64encode(&data.as_bytes(), &text(&variant, "std")).map_err(|m| lua_err(lua, m))
            },
        )?,
    )?;
    e.set(
        "b64decode",
        lua.create_function(
            move |lua, (data, variant): (LuaString, Option<LuaString>)| {
                let out = b64decode(&data.as_bytes(), &text(&variant, "std"))
                    .map_err(|m| lua_err(lua, m))?;
                lua.create_string(out)
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Result<Vec<u8>, String>) -> String {
        String::from_utf8(v.unwrap()).unwrap()
    }

    #[test]
    fn digests_match_known_vectors() {
        assert_eq!(
            text(hash("md5", b"abc", "hex")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            text(hash("sha1", b"abc", "hex")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            text(hash("sha256", b"abc", "hex")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            text(hash("sha256", b"abc", "base64")),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(hash("sha256", b"abc", "binary").unwrap().len(), 32);
        assert!(hash("whirlpool", b"", "hex")
            .unwrap_err()
            .contains("unsupported"));
        assert!(hash("md5", b"", "base32")
            .unwrap_err()
            .contains("output encoding"));
    }

    #[test]
    fn hmacs_match_rfc_vectors() {
        // RFC 4231 test case 2 and RFC 2202 test case 2.
        assert_eq!(
            text(hmac(
                "sha256",
                b"Jefe",
                b"what do ya want for nothing?",
                "hex"
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            text(hmac("md5", b"Jefe", b"what do ya want for nothing?", "hex")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            text(hmac(
                "sha1",
                b"Jefe",
                b"what do ya want for nothing?",
                "hex"
            )),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn base64_variants_round_trip() {
        let data = b"\xfb\xff\x00hello?";
        for v in ["std", "rawstd", "url", "rawurl"] {
            let e = b64encode(data, v).unwrap();
            assert_eq!(b64decode(e.as_bytes(), v).unwrap(), data);
        }
        assert_eq!(b64encode(b"hi?", "std").unwrap(), "aGk/");
        assert_eq!(b64encode(b"hi?", "url").unwrap(), "aGk_");
        assert_eq!(b64encode(b"h", "rawstd").unwrap(), "aA");
        assert!(b64decode(b"!!", "std").is_err());
    }
}
