//! JWT bearer tokens against an OIDC issuer the test serves itself (discovery
//! document and JWKS, counting fetches): every accepted algorithm, the claim
//! mapping to tenant, subject, scopes and roles, API keys side by side, and the
//! attacks a verifier must refuse (expired, not yet valid, wrong audience or
//! issuer, `alg: none`, HS/RS confusion, an unknown signer, an unknown-`kid`
//! flood that must not hammer the issuer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use serde_json::{Value, json};

use crate::harness::{api_key, call, start_with};

const RSA_PEM: &[u8] = include_bytes!("../fixtures/jwt-test-rsa.pem");
const RSA_PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/jwt-test-rsa.pub.pem");
const RSA_JWK: &str = include_str!("../fixtures/jwt-test-rsa.jwk.json");
const AUDIENCE: &str = "antwort";

/// The issuer: its discovery document, its JWKS, and how often the JWKS was fetched.
struct Issuer {
    url: String,
    fetches: Arc<AtomicU64>,
    keys: Keys,
}

/// Signing keys, by `kid`.
struct Keys {
    rsa: EncodingKey,
    ec256: EncodingKey,
    ec384: EncodingKey,
    ed: EncodingKey,
    /// A P-256 key the issuer never published.
    stranger: EncodingKey,
}

fn ec_key(alg: &'static signature::EcdsaSigningAlgorithm, kid: &str) -> (EncodingKey, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let half = (point.len() - 1) / 2;
    let curve = if half == 32 { "P-256" } else { "P-384" };
    let jwk = json!({
        "kty": "EC", "kid": kid, "use": "sig", "crv": curve,
        "x": URL_SAFE_NO_PAD.encode(&point[1..=half]),
        "y": URL_SAFE_NO_PAD.encode(&point[half + 1..]),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn ed_key(kid: &str) -> (EncodingKey, Value) {
    let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({
        "kty": "OKP", "kid": kid, "use": "sig", "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    });
    (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
}

async fn issuer() -> Issuer {
    let (ec256, ec256_jwk) = ec_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "ec-1");
    let (ec384, ec384_jwk) = ec_key(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "ec384-1");
    let (ed, ed_jwk) = ed_key("ed-1");
    let (stranger, _) = ec_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "ec-1");
    let rsa_jwk: Value = serde_json::from_str(RSA_JWK).unwrap();
    // An encryption key and an HMAC secret, as real sets carry: skipped, not fatal.
    let enc = json!({"kty": "RSA", "kid": "enc-1", "use": "enc", "alg": "RSA-OAEP", "n": rsa_jwk["n"], "e": "AQAB"});
    let oct = json!({"kty": "oct", "kid": "hmac-1", "k": URL_SAFE_NO_PAD.encode(b"shared secret")});
    let jwks = json!({"keys": [rsa_jwk, ec256_jwk, ec384_jwk, ed_jwk, enc, oct]});

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicU64::new(0));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
    let counter = fetches.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer {
        url,
        fetches,
        keys: Keys {
            rsa: EncodingKey::from_rsa_pem(RSA_PEM).unwrap(),
            ec256,
            ec384,
            ed,
            stranger,
        },
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Issuer {
    /// Claims of a good token for alice of acme, with `extra` merged in.
    fn claims(&self, extra: Value) -> Value {
        let mut claims = json!({
            "iss": self.url, "aud": AUDIENCE, "sub": "alice", "tenant_id": "acme",
            "exp": now() + 300, "iat": now(),
        });
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    }

    fn sign(&self, alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn token(&self, extra: Value) -> String {
        self.sign(
            Algorithm::RS256,
            "rsa-1",
            &self.keys.rsa,
            &self.claims(extra),
        )
    }
}

async fn gateway(issuer: &Issuer) -> crate::harness::Gateway {
    let url = issuer.url.clone();
    start_with(move |config| {
        let mut jwt: antwort::config::JwtSection =
            serde_yaml_ng::from_str(&format!("{{issuer: '{url}', audience: '{AUDIENCE}'}}"))
                .unwrap();
        jwt.leeway = std::time::Duration::from_secs(5);
        config.auth.jwt = Some(jwt);
        config.auth.api_keys = vec![api_key("sk-test-alice", "acme", "alice", &[])];
    })
    .await
}

async fn status(gateway: &crate::harness::Gateway, token: &str) -> (u16, Value) {
    let answer = call(
        &gateway.url,
        Method::GET,
        "/v1/responses",
        Some(token),
        None,
    )
    .await;
    (answer.status, answer.body)
}

#[tokio::test]
async fn tokens_of_every_accepted_algorithm_pass_and_api_keys_work_beside_them() {
    let issuer = issuer().await;
    let gateway = gateway(&issuer).await;
    let claims = issuer.claims(json!({}));
    let keys = &issuer.keys;
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", &keys.rsa),
        (Algorithm::RS384, "rsa-1", &keys.rsa),
        (Algorithm::RS512, "rsa-1", &keys.rsa),
        (Algorithm::ES256, "ec-1", &keys.ec256),
        (Algorithm::ES384, "ec384-1", &keys.ec384),
        (Algorithm::EdDSA, "ed-1", &keys.ed),
    ] {
        let token = issuer.sign(alg, kid, key, &claims);
        let (code, body) = status(&gateway, &token).await;
        assert_eq!(code, 200, "{alg:?}: {body}");
    }
    // A token and a key for the same tenant and subject are the same owner.
    let token = issuer.token(json!({}));
    let created = call(
        &gateway.url,
        Method::POST,
        "/v1/responses",
        Some(&token),
        Some(&json!({"input": "hi"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let by_key = call(
        &gateway.url,
        Method::GET,
        &format!("/v1/responses/{id}"),
        Some("sk-test-alice"),
        None,
    )
    .await;
    assert_eq!(by_key.status, 200, "{}", by_key.body);
    // Bob, in the same tenant, does not see it; acme's admin (by role) does.
    let bob = issuer.token(json!({"sub": "bob"}));
    let path = format!("/v1/responses/{id}");
    assert_eq!(
        call(&gateway.url, Method::GET, &path, Some(&bob), None)
            .await
            .status,
        404
    );
    let admin = issuer.token(json!({"sub": "carol", "realm_access": {"roles": ["admin"]}}));
    assert_eq!(
        call(&gateway.url, Method::GET, &path, Some(&admin), None)
            .await
            .status,
        200
    );
    // The JWKS was fetched once for all of it.
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn scopes_in_a_token_limit_what_it_may_do() {
    let issuer = issuer().await;
    let gateway = gateway(&issuer).await;
    let reader = issuer.token(json!({"scope": "openid profile responses:read"}));
    assert_eq!(status(&gateway, &reader).await.0, 200);
    let write = call(
        &gateway.url,
        Method::POST,
        "/v1/responses",
        Some(&reader),
        Some(&json!({"input": "hi"})),
    )
    .await;
    assert_eq!(write.status, 403, "{}", write.body);
    // A token that names no antwort scope at all is a user's.
    let plain = issuer.token(json!({"scope": "openid profile"}));
    let write = call(
        &gateway.url,
        Method::POST,
        "/v1/responses",
        Some(&plain),
        Some(&json!({"input": "hi"})),
    )
    .await;
    assert_eq!(write.status, 200, "{}", write.body);
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let issuer = issuer().await;
    let gateway = gateway(&issuer).await;
    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(issuer.claims(json!({})).to_string());
    let unsigned = format!("{header_none}.{payload}.");
    // HS256 "signed" with the RSA public key, as if it were a shared secret.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &issuer.claims(json!({})),
        &EncodingKey::from_secret(RSA_PUBLIC_PEM),
    )
    .unwrap();
    let hmac_kid = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("hmac-1".into());
        jsonwebtoken::encode(
            &header,
            &issuer.claims(json!({})),
            &EncodingKey::from_secret(b"shared secret"),
        )
        .unwrap()
    };
    let cases = [
        ("expired", issuer.token(json!({"exp": now() - 120}))),
        ("not yet valid", issuer.token(json!({"nbf": now() + 120}))),
        ("without exp", issuer.token(json!({"exp": null}))),
        ("without aud", issuer.token(json!({"aud": null}))),
        (
            "a NUL in the subject",
            issuer.token(json!({"sub": "ali\u{0}ce"})),
        ),
        (
            "wrong audience",
            issuer.token(json!({"aud": "someone-else"})),
        ),
        (
            "wrong issuer",
            issuer.token(json!({"iss": "https://evil.example"})),
        ),
        ("no tenant", issuer.token(json!({"tenant_id": null}))),
        ("alg none", unsigned),
        ("HS/RS confusion", confused),
        ("an HMAC key of the set", hmac_kid),
        (
            "an unknown signer under a known kid",
            issuer.sign(
                Algorithm::ES256,
                "ec-1",
                &issuer.keys.stranger,
                &issuer.claims(json!({})),
            ),
        ),
        (
            "an RSA kid with an EC algorithm",
            issuer.sign(
                Algorithm::ES256,
                "rsa-1",
                &issuer.keys.ec256,
                &issuer.claims(json!({})),
            ),
        ),
        (
            "an unknown kid",
            issuer.sign(
                Algorithm::ES256,
                "ghost",
                &issuer.keys.stranger,
                &issuer.claims(json!({})),
            ),
        ),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (case, token) in cases {
        let (code, body) = status(&gateway, &token).await;
        assert_eq!(code, 401, "{case}: {body}");
        assert_eq!(body["error"]["code"], "invalid_api_key", "{case}");
        assert!(
            !body.to_string().contains(&token),
            "{case}: the token echoed"
        );
    }
}

#[tokio::test]
async fn a_flood_of_unknown_kids_does_not_hammer_the_issuer() {
    let issuer = issuer().await;
    let gateway = gateway(&issuer).await;
    assert_eq!(status(&gateway, &issuer.token(json!({}))).await.0, 200);
    let before = issuer.fetches.load(Ordering::SeqCst);
    let claims = issuer.claims(json!({}));
    let floods = (0..40).map(|n| {
        let token = issuer.sign(
            Algorithm::ES256,
            &format!("forged-{n}"),
            &issuer.keys.stranger,
            &claims,
        );
        let gateway = &gateway;
        async move { status(gateway, &token).await.0 }
    });
    let codes = futures::future::join_all(floods).await;
    assert!(codes.iter().all(|code| *code == 401), "{codes:?}");
    let during = issuer.fetches.load(Ordering::SeqCst) - before;
    assert!(
        during <= 1,
        "40 unknown kids fetched the JWKS {during} times"
    );
    // Good tokens still pass from the cache meanwhile.
    assert_eq!(status(&gateway, &issuer.token(json!({}))).await.0, 200);
}
