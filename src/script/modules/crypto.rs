//! `k6/crypto`: digests, HMAC and random bytes, as pure functions
//! over byte strings. Lua strings carry binary data, so k6's ArrayBuffer results are
//! strings of raw bytes here ("binary" output encoding).

use super::with_rng;
use crate::script::context::WorkerCtx;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use md5::Digest;
use std::rc::Rc;

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

/// `hash`, `hmac` and `random_bytes`.
pub fn register(lua: &mlua::Lua, native: &mlua::Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    use crate::script::errors::lua_err;
    use mlua::LuaString;
    use rand::Rng;
    let text = |s: &Option<LuaString>, default: &str| {
        s.as_ref()
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| default.to_string())
    };
    native.set(
        "hash",
        lua.create_function(
            move |lua, (alg, data, enc): (LuaString, LuaString, Option<LuaString>)| {
                let out = hash(&alg.to_string_lossy(), &data.as_bytes(), &text(&enc, "hex"))
                    .map_err(|m| lua_err(lua, m))?;
                lua.create_string(out)
            },
        )?,
    )?;
    native.set(
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
    let c = ctx.clone();
    // k6/crypto's randomBytes: from the running VU's stream (repeatable under a seed).
    native.set(
        "random_bytes",
        lua.create_function(move |lua, n: i64| {
            if !(0..=1 << 20).contains(&n) {
                return Err(lua_err(
                    lua,
                    format!("randomBytes: size {n} is out of range"),
                ));
            }
            let mut bytes = vec![0u8; n as usize];
            with_rng(&c, |rng| rng.fill(&mut bytes[..]));
            lua.create_string(bytes)
        })?,
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
}
