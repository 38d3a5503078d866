//! Login tokens and sessions, in memory only (nothing of them is ever written to disk; a
//! daemon restart ends every session).
//!
//! A token is what `berth dashboard` prints in the login URL: one use, gone after
//! `TOKEN_TTL`. Redeeming it opens a session, which has two secrets: the cookie (HttpOnly,
//! so no script reads it) and the key, which the page keeps in its origin's storage and
//! sends with every API request. Browsers send a cookie of 127.0.0.1 to every port of
//! 127.0.0.1, so a page served by any other local program could be handed the cookie; the
//! key is bound to the dashboard's origin (scheme, host and port), so the cookie alone opens
//! nothing but the page's static files. Only SHA-256 digests of the secrets are kept, and a
//! secret is found by its digest, so no comparison leaks its bytes by timing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How long a login token stays good.
pub const TOKEN_TTL: Duration = Duration::from_secs(120);
/// How long a session lives without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Tokens waiting to be used, and sessions, at most (the oldest go first).
const MAX_TOKENS: usize = 32;
const MAX_SESSIONS: usize = 32;

type Digest32 = [u8; 32];

/// The secrets of a session just opened, for the browser.
#[derive(Debug)]
pub struct NewSession {
    /// The session cookie's value.
    pub cookie: String,
    /// The key the page sends with its API requests.
    pub key: String,
}

/// What a request's secrets open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session (no cookie, an unknown or an expired one).
    None,
    /// A session's cookie without its key: the page's files only.
    Page,
    /// The cookie and its key: everything.
    Full,
}

#[derive(Debug)]
struct Session {
    key: Digest32,
    last_used: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Token digest → when it expires.
    tokens: HashMap<Digest32, Instant>,
    /// Cookie digest → session.
    sessions: HashMap<Digest32, Session>,
}

/// The dashboard's tokens and sessions.
#[derive(Debug, Default)]
pub struct Vault {
    state: Mutex<State>,
}

impl Vault {
    /// A new one-time login token.
    pub fn mint_token(&self) -> Result<String> {
        self.mint_token_at(Instant::now())
    }

    /// Spends `token` (once only) and opens a session; `None` when the token is unknown,
    /// used or expired.
    pub fn redeem(&self, token: &str) -> Result<Option<NewSession>> {
        self.redeem_at(token, Instant::now())
    }

    /// What `cookie` and `key` open (a session's use keeps it alive).
    pub fn access(&self, cookie: Option<&str>, key: Option<&str>) -> Access {
        self.access_at(cookie, key, Instant::now())
    }

    fn mint_token_at(&self, now: Instant) -> Result<String> {
        let token = secret()?;
        let mut st = self.lock();
        st.tokens.retain(|_, expires| *expires > now);
        if st.tokens.len() >= MAX_TOKENS {
            if let Some(oldest) = st.tokens.iter().min_by_key(|(_, e)| **e).map(|(d, _)| *d) {
                st.tokens.remove(&oldest);
            }
        }
        st.tokens.insert(digest(&token), now + TOKEN_TTL);
        Ok(token)
    }

    fn redeem_at(&self, token: &str, now: Instant) -> Result<Option<NewSession>> {
        let mut st = self.lock();
        match st.tokens.remove(&digest(token)) {
            Some(expires) if expires > now => {}
            _ => return Ok(None),
        }
        let (cookie, key) = (secret()?, secret()?);
        st.sessions
            .retain(|_, s| now.duration_since(s.last_used) < SESSION_IDLE);
        if st.sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = st
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(d, _)| *d)
            {
                st.sessions.remove(&oldest);
            }
        }
        st.sessions.insert(
            digest(&cookie),
            Session {
                key: digest(&key),
                last_used: now,
            },
        );
        Ok(Some(NewSession { cookie, key }))
    }

    fn access_at(&self, cookie: Option<&str>, key: Option<&str>, now: Instant) -> Access {
        let Some(cookie) = cookie else {
            return Access::None;
        };
        let mut st = self.lock();
        let d = digest(cookie);
        let Some(s) = st.sessions.get_mut(&d) else {
            return Access::None;
        };
        if now.duration_since(s.last_used) >= SESSION_IDLE {
            st.sessions.remove(&d);
            return Access::None;
        }
        s.last_used = now;
        if key.is_some_and(|k| digest(k) == s.key) {
            Access::Full
        } else {
            Access::Page
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// 32 bytes from the kernel's random source, in hex.
fn secret() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| Error::Random(e.to_string()))?;
    Ok(hex::encode(b))
}

fn digest(s: &str) -> Digest32 {
    Sha256::digest(s.as_bytes()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_one_session_once() {
        let v = Vault::default();
        let now = Instant::now();
        let t = v.mint_token_at(now).unwrap();
        assert_eq!(t.len(), 64);
        let s = v.redeem_at(&t, now).unwrap().unwrap();
        assert!(
            v.redeem_at(&t, now).unwrap().is_none(),
            "a token is one-time"
        );
        assert_eq!(
            v.access_at(Some(&s.cookie), Some(&s.key), now),
            Access::Full
        );
        assert_eq!(v.access_at(Some(&s.cookie), None, now), Access::Page);
        assert_eq!(
            v.access_at(Some(&s.cookie), Some(&s.cookie), now),
            Access::Page
        );
        assert_eq!(v.access_at(Some(&s.key), Some(&s.key), now), Access::None);
        assert_eq!(v.access_at(None, Some(&s.key), now), Access::None);
    }

    #[test]
    fn tokens_expire_and_wrong_ones_open_nothing() {
        let v = Vault::default();
        let now = Instant::now();
        let t = v.mint_token_at(now).unwrap();
        assert!(v.redeem_at("00", now).unwrap().is_none());
        assert!(v.redeem_at(&t, now + TOKEN_TTL).unwrap().is_none());
    }

    #[test]
    fn idle_sessions_end() {
        let v = Vault::default();
        let now = Instant::now();
        let t = v.mint_token_at(now).unwrap();
        let s = v.redeem_at(&t, now).unwrap().unwrap();
        let later = now + SESSION_IDLE / 2;
        assert_eq!(
            v.access_at(Some(&s.cookie), Some(&s.key), later),
            Access::Full
        );
        // Used at `later`: alive until `later + SESSION_IDLE`.
        let end = later + SESSION_IDLE;
        assert_eq!(
            v.access_at(Some(&s.cookie), Some(&s.key), end),
            Access::None
        );
    }

    #[test]
    fn old_tokens_and_sessions_make_room() {
        let v = Vault::default();
        let now = Instant::now();
        let first = v.mint_token_at(now).unwrap();
        for i in 0..MAX_TOKENS {
            v.mint_token_at(now + Duration::from_millis(i as u64 + 1))
                .unwrap();
        }
        assert!(v
            .redeem_at(&first, now + Duration::from_secs(1))
            .unwrap()
            .is_none());
        assert!(v.lock().tokens.len() <= MAX_TOKENS);
    }
}
