//! Auth tokens: issued, checked, expired, and kept hashed at rest.

use super::*;

#[test]
fn auth_tokens_work_until_they_expire() {
    let h = harness();
    let (reply, _) = h.run(E::GenerateAuthToken(p::GenerateAuthTokenCommand {}));
    let R::GenerateAuthToken(t) = reply else {
        panic!("wrong reply")
    };
    assert_eq!(t.lifetime.unwrap().seconds, 3600);
    let meta = |key: Option<&str>, token: Option<&str>| p::AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        api_key: key.map(Into::into),
        auth_token: token.map(Into::into),
        simplex_mode: false,
        simulator_mode: false,
    };
    assert!(
        h.engine
            .authenticate(&meta(Some(TEST_API_KEY), None))
            .is_ok()
    );
    assert_eq!(
        h.engine.authenticate(&meta(Some("el_k_wrong"), None)),
        Err(AuthError::InvalidApiKey(TEST_APP_ID.into()))
    );
    assert!(h.engine.authenticate(&meta(None, Some(&t.token))).is_ok());
    assert_eq!(
        h.engine.authenticate(&meta(None, Some("el_tkn_forged"))),
        Err(AuthError::InvalidToken)
    );
    assert_eq!(
        h.engine.authenticate(&meta(None, None)),
        Err(AuthError::MissingCredentials)
    );
    let mut other = meta(Some(TEST_API_KEY), None);
    other.org_id = "el_org_other".into();
    assert!(matches!(
        h.engine.authenticate(&other),
        Err(AuthError::UnknownOrg(_))
    ));
    h.clock.advance_millis(3_600_000);
    assert_eq!(
        h.engine.authenticate(&meta(None, Some(&t.token))),
        Err(AuthError::ExpiredToken)
    );
}

#[tokio::test]
async fn auth_tokens_are_kept_hashed_in_a_private_data_dir() {
    let dir = temp_data_dir("elarian-emulator-secrets");
    let clock = ManualClock::new(T0);
    let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
    let token = {
        let engine = reopen(&clock, &dir);
        let out = committed(
            &engine,
            &app,
            E::GenerateAuthToken(p::GenerateAuthTokenCommand {}),
        )
        .await;
        let Some(R::GenerateAuthToken(t)) = out.reply.entry else {
            panic!("wrong reply")
        };
        t.token
    };
    let file = dir.join("emulator.redb");
    let bytes = std::fs::read(&file).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(token.as_bytes()), "the token is stored in clear");
    assert!(
        contains(crate::ids::token_key(&token).as_bytes()),
        "the token's hash is the key"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    // The token still authenticates, looked up by its hash.
    let engine = reopen(&clock, &dir);
    let meta = p::AppConnectionMetadata {
        org_id: TEST_ORG_ID.into(),
        app_id: TEST_APP_ID.into(),
        auth_token: Some(token.clone()),
        ..Default::default()
    };
    assert!(engine.authenticate(&meta).is_ok());
    let wrong = p::AppConnectionMetadata {
        auth_token: Some(format!("{token}x")),
        ..meta
    };
    assert!(engine.authenticate(&wrong).is_err());
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
